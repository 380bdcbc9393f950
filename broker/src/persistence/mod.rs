//! Persistence: the storage interface for sessions, retained and queued messages, with an
//! in-memory implementation and a SQLite one.
