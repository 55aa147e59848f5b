//! `pullproof`: run and inspect image-pull diagnosis scenarios.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
