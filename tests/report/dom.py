"""A small reader for the report page: elements carrying data- attributes, with their text."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

VOID = {"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str
    parent: "Element | None"

    def up(self, tag: str) -> "Element":
        """The nearest enclosing element with this tag."""
        node = self.parent
        while node is not None and node.tag != tag:
            node = node.parent
        assert node is not None, f"no <{tag}> around <{self.tag}>"
        return node


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[Element, list[str]]] = []
        self.found: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        parent = self.stack[-1][0] if self.stack else None
        element = Element(tag, {k: v or "" for k, v in attrs}, "", parent)
        if tag not in VOID:
            self.stack.append((element, []))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            element, parts = self.stack.pop()
            element.text = "".join(parts)
            self.found.append(element)
            if self.stack:
                self.stack[-1][1].append(element.text)
            if element.tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.stack:
            self.stack[-1][1].append(data)


def elements(page: str) -> list[Element]:
    """Every closed element of `page`, innermost first, with its text content."""
    reader = _Reader()
    reader.feed(page)
    reader.close()
    return reader.found


def having(page: str, attribute: str) -> list[Element]:
    return [e for e in elements(page) if attribute in e.attrs]
