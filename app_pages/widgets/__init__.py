"""Custom components of the pages (HTML, CSS and JavaScript shipped beside their Python)."""
