import ArgumentParser

@main
struct Shoal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal",
        abstract: "A BitTorrent engine: create, inspect, download and seed torrents; run a tracker and a DHT node.",
        subcommands: [
            CreateCommand.self, InfoCommand.self, GetCommand.self, SeedCommand.self, TrackerCommand.self, ScrapeCommand.self,
            DHTCommand.self, DemoCommand.self, LabCommand.self,
        ])
}
