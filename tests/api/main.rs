//! Black-box tests of natter over real HTTP and WebSockets.

mod abuse;
mod admin;
mod auth;
mod avatars;
mod chats;
mod cli;
mod cluster;
mod config;
mod crash;
mod files;
mod hardening;
mod helpers;
mod hiding;
mod messages;
mod metrics;
mod migrate_store;
mod notes;
mod openapi;
mod push;
mod realtime;
mod receipts;
mod s3;
mod security;
mod socketio;
mod store;
mod webapp;
