//! Berth's black-box test suite: real `berth` processes over real HTTP, real
//! files on disk, and real docker and skopeo clients.

mod access;
mod atomic;
mod bad_input;
mod clients;
mod distribution;
mod e2e;
mod history;
mod support;
