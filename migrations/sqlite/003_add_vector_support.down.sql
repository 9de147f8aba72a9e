DROP TRIGGER documents_touch;
DROP INDEX idx_document_embeddings_row;
DROP TABLE document_embeddings;
