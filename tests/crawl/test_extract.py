from anshim.crawl import extract_links, is_media_url

PAGE = """<html><head><title> Gallery </title>
<meta property="og:image" content="/og.jpg"><base href="https://site.test/sub/"></head>
<body><img src="a.png" srcset="a-2x.png 2x, a-3x.png 3x">
<picture><source srcset="b.webp 480w, b-big.webp 800w"><img src="b.jpg"></picture>
<video poster="poster.jpg"><source src="/v/clip.mp4"></video>
<a href="next.html#top">next</a> <a href="files/photo.JPEG">photo</a>
<a href="javascript:alert(1)">x</a> <a href="mailto:a@b.c">m</a> <a href="next.html">again</a>
<script>var s = "<img src='no.png'>";</script><p>Hello <b>world</b></p></body></html>"""


def test_extracts_every_kind_of_media_link_once() -> None:
    links = extract_links(PAGE, "https://site.test/index.html")
    assert len(set(links.media)) == len(links.media)
    assert set(links.media) == {
        "https://site.test/sub/a.png", "https://site.test/sub/b.jpg",
        "https://site.test/sub/a-2x.png", "https://site.test/sub/a-3x.png",
        "https://site.test/sub/b.webp", "https://site.test/sub/b-big.webp",
        "https://site.test/v/clip.mp4", "https://site.test/sub/poster.jpg",
        "https://site.test/og.jpg", "https://site.test/sub/files/photo.JPEG",
    }
    assert links.pages == ("https://site.test/sub/next.html",)
    assert links.title == "Gallery"
    assert "Hello" in links.text and "no.png" not in links.text


def test_garbage_html_gives_no_links_and_no_error() -> None:
    for junk in ["", "\x00\x01<<<>>>", "<img src=>", "<a href='http://[::1'>x</a>"]:
        links = extract_links(junk, "https://site.test/")
        assert isinstance(links.media, tuple)


def test_is_media_url_ignores_query_and_case() -> None:
    assert is_media_url("https://x.test/a/B.MP4?x=1")
    assert not is_media_url("https://x.test/a.html?f=b.jpg")
