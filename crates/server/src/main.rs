//! The `pasarela` binary.
#![forbid(unsafe_code)]

use clap::Parser as _;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = pasarela_server::cli::Cli::parse();
    match pasarela_server::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pasarela: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
