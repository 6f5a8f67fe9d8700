//! nf_tables
