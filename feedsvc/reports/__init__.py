"""Admin dashboard reports: figures from the database (figures) drawn as inline SVG with a table (charts)."""
