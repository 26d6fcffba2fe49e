"""The archive's words, folding and highlighting (archive/query.py): pure functions."""

from __future__ import annotations

from archive.query import MAX_WORDS, fold, highlight, matches_all, words


def test_words_are_folded_unique_and_bounded() -> None:
    assert fold("ENVÍO Ñandú") == "envio nandu"
    assert words("¿Envío?  envio, <b>ENVIO</b>") == ("envio", "b")
    assert words("maria@example.com") == ("maria", "example", "com")
    assert len(words(" ".join(f"w{i}" for i in range(20)))) == MAX_WORDS
    assert words("  ¿¡!?  ") == ()


def test_matches_are_word_prefixes() -> None:
    assert matches_all("Mi envío llegó", ("envi", "lleg")) == {"envi", "lleg"}
    assert matches_all("reenvío", ("envio",)) == set()  # a prefix of a word, not inside it


def test_highlight_cuts_plain_pieces_around_the_match() -> None:
    pieces = highlight("<b>¿Dónde</b> está mi ENVÍO?", ("envio",))
    assert ("ENVÍO", True) in pieces
    assert "".join(p for p, _ in pieces) == "<b>¿Dónde</b> está mi ENVÍO?"
    assert [p for p, hit in pieces if hit] == ["ENVÍO"]
    long = "x " * 300 + "envío " + "y " * 300
    cut = highlight(long, ("envio",), limit=100)
    assert cut[0] == ("…", False) and cut[-1] == ("…", False)
    assert ("envío", True) in cut
    assert sum(len(p) for p, _ in cut) <= 102
    assert highlight("nothing here", ("envio",)) == [("nothing here", False)]
