import ArgumentParser

struct LabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Experiments on the real engine: the lecture's questions, measured.",
        subcommands: [LabDistributionCommand.self])
}
