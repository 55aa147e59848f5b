//! pullproof-emulator
