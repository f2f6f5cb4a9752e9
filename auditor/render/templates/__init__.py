"""Jinja2 templates of the HTML report (a package so that the ``*.j2`` files ship as package data)."""
