"""`llada serve`: the OpenAI-compatible HTTP API (`api`) and the browser page (`web`), a thin
front end over the session layer's model host."""
