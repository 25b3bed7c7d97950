"""Paths no built file could have answer 404 (not 500): names too long for the file system, huge numbers."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/" + "a" * 251 + ".atom",
        "/feeds/" + "a" * 251 + ".json",
        "/feeds/" + "a" * 5000 + ".atom",
        "/issues/" + "9" * 300,
        "/issues/" + "9" * 300 + "?lang=en",
        "/issues/" + "9" * 5000,
        "/issues/" + "9" * 300 + ".html",
    ],
)
def test_names_too_long_for_a_file_answer_404(client, path: str) -> None:  # type: ignore[no-untyped-def]
    response = client.get(path)
    assert response.status_code == 404
    assert b"<html" in response.data.lower()


def test_the_site_reader_says_none_for_a_name_too_long(built) -> None:  # type: ignore[no-untyped-def]
    from feedsvc.site.reader import SiteReader

    reader = SiteReader(built.site_dir)
    assert reader.get("feeds/" + "a" * 300 + ".atom") is None
    assert reader.get("issues/" + "9" * 300 + ".html") is None
    assert reader.get("issues/398.html") is not None
