"""Sphinx tweaks for the book's HTML, loaded through ``sphinx.local_extensions`` in _config.yml."""

from __future__ import annotations


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated ``<script>`` tags from a page.

    Under Jupyter Book 1, sphinx-thebe registers its inline configuration twice, and the second
    ``const THEBE_JS_URL = …`` is a console error (a redeclared constant) on every page.
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        attributes = tuple(sorted(getattr(js, "attributes", {}).items()))
        key = (str(getattr(js, "filename", js) or ""), attributes)  # None and "" alike
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
