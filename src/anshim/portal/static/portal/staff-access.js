// The print button of the portal access sheet (no inline script under the CSP).
document.querySelectorAll("[data-print]").forEach((b) => b.addEventListener("click", () => window.print()));
