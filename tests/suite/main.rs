//! Berth's black-box test suite: real `berth` processes over real HTTP, real
//! files on disk, and real docker and skopeo clients.

// Test code: an unwrap that fails is a test that fails, with its line.
#![allow(clippy::unwrap_used)]

mod access;
mod atomic;
mod audit;
mod bad_input;
mod browser;
mod clients;
mod cluster;
mod console;
mod distribution;
mod e2e;
mod examples;
mod faults;
mod gc;
mod history;
mod manage;
mod operations;
mod property;
mod retries;
mod support;
mod tls;
mod uploads;
