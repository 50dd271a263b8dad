import ShoalCore

extension FileLayout {
    /// Piece priorities from file priorities: a piece gets the highest priority of the files it touches
    /// (padding files count for nothing), so a piece shared by a skipped file and a wanted one is fetched.
    /// `files` holds one priority per file of the layout; a list of another length gives every piece normal.
    public func piecePriorities(files priorities: [PiecePriority]) -> [PiecePriority] {
        guard priorities.count == files.count else { return Array(repeating: .normal, count: pieceCount) }
        return (0..<pieceCount).map { piece in
            var best = PiecePriority.skip
            for index in fileIndices(inPiece: piece) where !files[index].isPadding && files[index].length > 0 {
                best = max(best, priorities[index])
            }
            return best
        }
    }
}
