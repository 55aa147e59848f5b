//! `pulldoctor`: why can't my pod pull its image from ACR?

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
