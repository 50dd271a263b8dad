import Foundation
import ShoalProcess
import Testing

/// `shoal lab distribution` as a user runs it: several swarm sizes, simulated two at a time, and one table
/// with every size and both modes, whatever order the simulations ended in.
@Suite struct LabCommandTests {
    @Test func simulationsRunSideBySideAndEveryRowIsReported() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let out = directory.appendingPathComponent("lab")
            let outcome = try await Interop.shoal([
                "lab", "distribution", "--file-size", "1M", "--peers", "3,1,2", "--runs", "2", "--jobs", "2",
                "--out", out.path,
            ])
            #expect(outcome.succeeded, "\(outcome.summary)")
            let text = outcome.stdoutText
            for n in 1...3 {
                for run in 1...2 {
                    #expect(text.contains("N=\(n) run \(run): P2P "), "\(text)")
                    #expect(text.contains("N=\(n) run \(run): client-server "), "\(text)")
                }
            }
            #expect(text.contains("and the other simulation running beside it included"), "\(text)")
            let csv = try String(contentsOf: out.appendingPathComponent("distribution.csv"), encoding: .utf8)
            let rows = csv.split(whereSeparator: \.isNewline).dropFirst()
                .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            #expect(rows.map(\.first) == ["1", "2", "3"], "\(csv)")
            // Every size has both means (of two runs each), none left empty by the parallel runs.
            for row in rows {
                #expect(row.count > 7 && Double(row[2]) != nil && Double(row[7]) != nil, "\(row)")
            }
        }
    }
}
