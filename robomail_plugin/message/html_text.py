"""HTML to readable plain text, for a body_text when a message has only HTML (and SMTP's
html+text bodies).

Its own module so ``html.parser`` loads only when some HTML is converted: keeps `hostsim actions`
start-up light.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                        "table", "ul", "ol", "blockquote", "pre", "hr", "section", "article"})
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text from HTML: tags dropped, entities decoded, blocks on their own lines."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:
        return re.sub(r"<[^>]*>", " ", html).strip()
    raw_lines = "".join(parser.out).split("\n")
    lines = (re.sub(r"[ \t\r\f\v\xa0]+", " ", line).strip() for line in raw_lines)
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
