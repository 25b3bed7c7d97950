"""Archive search: Chinese-aware tokens (tokens), the index of published items (index), queries (query)."""
