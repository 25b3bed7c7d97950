"""Issues as the publisher writes them: the model, the reader and its parts, the one Markdown dialect."""
