//! pullproof
