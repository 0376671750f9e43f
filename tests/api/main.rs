//! Black-box tests of natter over real HTTP and WebSockets.

mod auth;
mod chats;
mod helpers;
mod messages;
mod realtime;
mod socketio;
