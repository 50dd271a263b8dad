import ArgumentParser

@main
struct Shoal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal",
        abstract: "A BitTorrent engine: create, inspect, download and seed torrents.",
        subcommands: [CreateCommand.self, InfoCommand.self, GetCommand.self, SeedCommand.self, DemoCommand.self, LabCommand.self, DHTCommand.self])
}
