"""Per-case evidence packages for police and court: a JSON file and a PDF, signed together.

`<CODE>-evidence.json` = {"package": {...}, "signature": hex, "public_key": base64,
"key_id": ...}. The signature (Ed25519) covers the canonical JSON of "package", which holds
every evidence record (each signed on its own too) and the SHA-256 of the PDF, so one check
covers both files. The page HTML is included as text; the media never is.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from django.utils import timezone

from anshim.cases.models import Case
from anshim.cases.services import audit
from anshim.erasure import evidence as ev_mod
from anshim.erasure.models import Evidence

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


def _records(case: Case) -> list[dict[str, Any]]:
    out = []
    evidence = Evidence.objects.filter(sighting__case=case).select_related("sighting__case")
    for ev in evidence:
        out.append({**ev_mod.evidence_payload(ev), "page_html": ev.page_html,
                    "signature": ev.signature, "key_id": ev.key_id,
                    "sighting_status": ev.sighting.status})
    return out


def _pdf(case: Case, records: list[dict[str, Any]], generated: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    unicode_font = CJK_FONT.exists()
    if unicode_font:
        pdf.add_font("noto", fname=str(CJK_FONT), collection_font_number=1)  # KR face
        pdf.set_font("noto", size=10)
    else:
        pdf.set_font("Helvetica", size=10)

    def line(text: str, size: int = 10) -> None:
        if not unicode_font:
            text = text.encode("latin-1", errors="replace").decode("latin-1")
        pdf.set_font_size(size)
        pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")

    line(("증거 기록 / Evidence package" if unicode_font else "Evidence package")
         + f" - {case.code}", 14)
    line(f"Generated: {generated}   Records: {len(records)}")
    for r in records:
        line("")
        line(f"{r['reference']}  captured {r['captured_at']}", 11)
        for key in ("page_url", "media_url", "http_status", "media_sha256", "fingerprint",
                    "distance", "entry_id", "page_html_sha256", "key_id", "signature"):
            line(f"{key}: {r[key]}")
        headers = ", ".join(f"{k}: {v}" for k, v in sorted((r["headers"] or {}).items()))
        line(f"headers: {headers or '-'}")
    return bytes(pdf.output())


def export_case(case: Case, out_dir: Path, *, actor: Any = None) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = timezone.now().isoformat()
    records = _records(case)
    pdf_bytes = _pdf(case, records, generated)
    pdf_path = out_dir / f"{case.code}-evidence.pdf"
    pdf_path.write_bytes(pdf_bytes)
    package = {"case": case.code, "generated_at": generated, "records": records,
               "pdf": pdf_path.name, "pdf_sha256": hashlib.sha256(pdf_bytes).hexdigest()}
    signature, key_id = ev_mod.sign(ev_mod.canonical(package))
    json_path = out_dir / f"{case.code}-evidence.json"
    json_path.write_text(json.dumps({"package": package, "signature": signature,
                                     "key_id": key_id, "public_key": ev_mod.public_key_b64(),
                                     "algorithm": "Ed25519"}, ensure_ascii=False, indent=2))
    audit(actor=actor, action="evidence.export", case=case, reason=f"{len(records)} records")
    return json_path, pdf_path


def verify_package(json_path: Path, public_key: bytes | None = None) -> bool:
    """Check a package: the package signature, the PDF hash and every record's signature.

    `public_key` (raw 32 bytes) should come from the center, not from the file itself."""
    doc = json.loads(json_path.read_text())
    key = public_key or base64.b64decode(doc["public_key"])
    package = doc["package"]
    if not ev_mod.verify(ev_mod.canonical(package), doc["signature"], key):
        return False
    pdf = json_path.parent / package["pdf"]
    if not pdf.exists() or hashlib.sha256(pdf.read_bytes()).hexdigest() != package["pdf_sha256"]:
        return False
    signed_keys = ("reference", "captured_at", "page_url", "media_url", "http_status", "headers",
                   "media_sha256", "fingerprint", "distance", "page_html_sha256", "entry_id",
                   "case")
    for r in package["records"]:
        if hashlib.sha256(r["page_html"].encode()).hexdigest() != r["page_html_sha256"]:
            return False
        payload = {k: r[k] for k in signed_keys}
        if not ev_mod.verify(ev_mod.canonical(payload), r["signature"], key):
            return False
    return True
