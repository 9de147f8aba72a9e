-- Seed data (`migrator seed`): the document every install starts with.
-- Seeds run on every `migrator seed`, so this one is idempotent: the row is inserted once, updated
-- only when this file's text changes (the WHERE keeps the documents_touch trigger from firing on
-- an unchanged row), and a second run changes nothing.
INSERT INTO documents (id, title, content)
VALUES ('welcome', 'Welcome', 'Your documents live here; their embeddings live in LanceDB.')
ON CONFLICT (id) DO UPDATE SET title = excluded.title, content = excluded.content
WHERE documents.title IS NOT excluded.title OR documents.content IS NOT excluded.content;
