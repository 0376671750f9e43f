//! Black-box tests of natter over real HTTP and WebSockets.

mod abuse;
mod admin;
mod auth;
mod chats;
mod cli;
mod crash;
mod files;
mod helpers;
mod messages;
mod metrics;
mod openapi;
mod realtime;
mod security;
mod socketio;
