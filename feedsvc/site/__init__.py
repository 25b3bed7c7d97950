"""The static site: feeds, archive pages, the atomic writer, the reader that serves it, and the build."""
