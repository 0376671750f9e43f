//! Black-box tests of natter over real HTTP and WebSockets.

mod admin;
mod auth;
mod avatars;
mod chats;
mod config;
mod crash;
mod files;
mod helpers;
mod hiding;
mod messages;
mod metrics;
mod notes;
mod openapi;
mod realtime;
mod receipts;
mod security;
mod socketio;
