import ArgumentParser

@main
struct Shoal: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal",
        abstract: "A BitTorrent engine.",
        subcommands: [CreateCommand.self, InfoCommand.self])
}
