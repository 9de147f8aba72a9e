-- Which LanceDB row holds the embedding of which document, made by which model.
CREATE TABLE document_embeddings (
    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    lance_table TEXT NOT NULL,
    lance_row_id TEXT NOT NULL,
    model TEXT NOT NULL,
    dimension INTEGER NOT NULL CHECK (dimension > 0),
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (document_id, model)
);

CREATE INDEX idx_document_embeddings_row ON document_embeddings(lance_table, lance_row_id);

-- Keep updated_at honest; the trigger body holds its own statements.
CREATE TRIGGER documents_touch AFTER UPDATE OF title, content ON documents
BEGIN
    UPDATE documents SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;
