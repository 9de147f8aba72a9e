DROP INDEX notes_created;
DROP TABLE notes;
