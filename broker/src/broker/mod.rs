//! The running broker: shared state behind cheap handles, the accept loop, one task per
//! connection feeding the session engine, wills, takeover and `$SYS`.
