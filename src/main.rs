fn main() -> std::process::ExitCode {
    nexusml::cli::main()
}
