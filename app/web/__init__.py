"""HTTP: the JSON API and the page."""
