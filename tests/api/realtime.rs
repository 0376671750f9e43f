//! WebSocket hub tests (filled in by the real-time work).
