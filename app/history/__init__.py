"""What the app keeps: the SQLite history (`store`), answers' denoising traces (`trace`),
transcript exports (`export`: Markdown, JSON, HTML; `links`: which links may open) and
animation files (`animation`). Qt-free."""
