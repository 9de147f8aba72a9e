-- The notes themselves: SQL owns the rows, LanceDB (note_chunks) their vectors.
CREATE TABLE notes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX notes_created ON notes (created_at);
