/// The bencode decoder (BEP 3): one pass over the input, no recursion, no string copies.
///
/// Nesting is tracked on an explicit stack, so a hostile document can exhaust neither the call stack
/// nor memory: depth, item count, string length and integer size are all bounded by ``BencodeLimits``.
/// What BEP 3 forbids is refused with the offset of the offending byte: leading zeros, `-0`,
/// non-string keys, duplicate keys, and data after the top-level value.
struct BencodeDecoder {
    let limits: BencodeLimits

    private struct Frame {
        var token: Int
        var isDictionary: Bool
        var expectingKey: Bool
        var count: Int64
        /// Span of the previous key's content, to check the order of keys.
        var previousKey: Range<Int>?
        var keysSorted: Bool
    }

    private static let colon = UInt8(ascii: ":")
    private static let zero = UInt8(ascii: "0")
    private static let nine = UInt8(ascii: "9")
    private static let minus = UInt8(ascii: "-")
    private static let letterE = UInt8(ascii: "e")
    private static let letterI = UInt8(ascii: "i")
    private static let letterL = UInt8(ascii: "l")
    private static let letterD = UInt8(ascii: "d")

    func decode(_ bytes: [UInt8], allowTrailingData: Bool) throws(BencodeError) -> BencodeDocument {
        let result: (tokens: [BencodeDocument.Token], unsorted: [Int], end: Int)
        do {
            result = try bytes.withUnsafeBufferPointer { buffer throws(BencodeError) in
                try decode(buffer, allowTrailingData: allowTrailingData)
            }
        }
        return BencodeDocument(
            storage: .init(bytes: bytes, tokens: result.tokens),
            unsortedKeyOffsets: result.unsorted,
            end: result.end)
    }

    private func decode(
        _ input: UnsafeBufferPointer<UInt8>, allowTrailingData: Bool
    ) throws(BencodeError) -> (tokens: [BencodeDocument.Token], unsorted: [Int], end: Int) {
        let count = input.count
        guard count > 0 else { throw BencodeError(.empty, at: 0) }
        var tokens: [BencodeDocument.Token] = []
        tokens.reserveCapacity(min(count / 4 + 1, 4096))
        var stack: [Frame] = []
        var unsorted: [Int] = []
        var position = 0

        while true {
            guard position < count else { throw BencodeError(.truncated, at: position) }
            let byte = input[position]

            if !stack.isEmpty {
                let top = stack.count - 1
                if byte == Self.letterE {
                    let frame = stack.removeLast()
                    if frame.isDictionary && !frame.expectingKey {
                        throw BencodeError(.missingValue, at: position)
                    }
                    position += 1
                    tokens[frame.token].end = position
                    tokens[frame.token].next = tokens.count
                    tokens[frame.token].payload = frame.count
                    if frame.isDictionary && !frame.keysSorted {
                        try checkDistinctKeys(of: frame.token, in: tokens, input: input)
                    }
                    if stack.isEmpty { break }
                    continue
                }
                if stack[top].isDictionary && stack[top].expectingKey {
                    guard byte >= Self.zero && byte <= Self.nine else {
                        throw BencodeError(.nonStringKey, at: position)
                    }
                    let keyStart = position
                    let content = try readString(input, at: &position, tokens: &tokens)
                    if let previous = stack[top].previousKey {
                        let order = compare(input, previous, content)
                        if order == 0 { throw BencodeError(.duplicateKey, at: keyStart) }
                        if order > 0 {
                            stack[top].keysSorted = false
                            unsorted.append(keyStart)
                        }
                    }
                    stack[top].previousKey = content
                    stack[top].expectingKey = false
                    continue
                }
                // A value: a list element or a dictionary entry's value.
                stack[top].count += 1
                if stack[top].isDictionary { stack[top].expectingKey = true }
            }

            guard tokens.count < limits.maxItems else {
                throw BencodeError(.tooManyItems(limit: limits.maxItems), at: position)
            }
            switch byte {
            case Self.letterI:
                try readInteger(input, at: &position, tokens: &tokens)
            case Self.zero...Self.nine:
                _ = try readString(input, at: &position, tokens: &tokens)
            case Self.letterL, Self.letterD:
                guard stack.count < limits.maxDepth else {
                    throw BencodeError(.tooDeep(limit: limits.maxDepth), at: position)
                }
                let isDictionary = byte == Self.letterD
                stack.append(
                    Frame(
                        token: tokens.count, isDictionary: isDictionary, expectingKey: isDictionary,
                        count: 0, previousKey: nil, keysSorted: true))
                tokens.append(
                    .init(
                        kind: isDictionary ? .dictionary : .list, start: position, end: position,
                        next: 0, payload: 0))
                position += 1
                continue
            default:
                throw BencodeError(.unexpectedByte(byte), at: position)
            }
            if stack.isEmpty { break }
        }

        if position != count && !allowTrailingData {
            throw BencodeError(.trailingData, at: position)
        }
        return (tokens, unsorted, position)
    }

    /// Reads `i<digits>e` at `position` and appends its token.
    private func readInteger(
        _ input: UnsafeBufferPointer<UInt8>, at position: inout Int,
        tokens: inout [BencodeDocument.Token]
    ) throws(BencodeError) {
        let start = position
        var cursor = position + 1
        let negative = cursor < input.count && input[cursor] == Self.minus
        if negative { cursor += 1 }
        let digitsStart = cursor
        let value = try readDigits(input, at: &cursor, negative: negative)
        guard cursor < input.count else { throw BencodeError(.truncated, at: cursor) }
        guard cursor > digitsStart else { throw BencodeError(.emptyInteger, at: cursor) }
        guard input[cursor] == Self.letterE else { throw BencodeError(.unexpectedByte(input[cursor]), at: cursor) }
        if negative && value == 0 { throw BencodeError(.negativeZero, at: start) }
        cursor += 1
        tokens.append(.init(kind: .integer, start: start, end: cursor, next: tokens.count + 1, payload: value))
        position = cursor
    }

    /// Reads `<length>:<bytes>` at `position`, appends its token and returns the content's span.
    private func readString(
        _ input: UnsafeBufferPointer<UInt8>, at position: inout Int,
        tokens: inout [BencodeDocument.Token]
    ) throws(BencodeError) -> Range<Int> {
        let start = position
        var cursor = position
        let declared = try readDigits(input, at: &cursor, negative: false)
        guard cursor < input.count else { throw BencodeError(.truncated, at: cursor) }
        guard input[cursor] == Self.colon else {
            throw BencodeError(.unexpectedByte(input[cursor]), at: cursor)
        }
        guard declared <= Int64(limits.maxStringLength) else {
            throw BencodeError(
                .stringTooLong(declared: Int(declared), limit: limits.maxStringLength), at: start)
        }
        cursor += 1
        let length = Int(declared)
        guard length <= input.count - cursor else { throw BencodeError(.truncated, at: input.count) }
        let content = cursor..<(cursor + length)
        tokens.append(
            .init(
                kind: .string, start: start, end: content.upperBound, next: tokens.count + 1,
                payload: Int64(cursor)))
        position = content.upperBound
        return content
    }

    /// Reads decimal digits at `cursor`, refusing leading zeros, too many digits and overflow.
    private func readDigits(
        _ input: UnsafeBufferPointer<UInt8>, at cursor: inout Int, negative: Bool
    ) throws(BencodeError) -> Int64 {
        let start = cursor
        var value: Int64 = 0
        while cursor < input.count, input[cursor] >= Self.zero, input[cursor] <= Self.nine {
            if cursor - start >= limits.maxIntegerDigits {
                throw BencodeError(.integerTooLarge, at: start)
            }
            let digit = Int64(input[cursor] - Self.zero)
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (next, overflowB) =
                negative
                ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            if overflowA || overflowB { throw BencodeError(.integerTooLarge, at: start) }
            value = next
            cursor += 1
        }
        if cursor - start > 1 && input[start] == Self.zero {
            throw BencodeError(.leadingZero, at: start)
        }
        return value
    }

    /// Three-way byte-wise comparison of two spans of the input.
    private func compare(_ input: UnsafeBufferPointer<UInt8>, _ a: Range<Int>, _ b: Range<Int>) -> Int {
        let shared = min(a.count, b.count)
        for offset in 0..<shared {
            let x = input[a.lowerBound + offset]
            let y = input[b.lowerBound + offset]
            if x != y { return x < y ? -1 : 1 }
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    /// In a dictionary whose keys were out of order, adjacent comparison cannot see every
    /// duplicate: sort its keys and compare neighbours.
    private func checkDistinctKeys(
        of dictionary: Int, in tokens: [BencodeDocument.Token], input: UnsafeBufferPointer<UInt8>
    ) throws(BencodeError) {
        var keys: [(content: Range<Int>, start: Int)] = []
        var index = dictionary + 1
        let end = tokens[dictionary].next
        while index < end {
            let key = tokens[index]
            let contentStart = Int(key.payload)
            keys.append((contentStart..<key.end, key.start))
            index = tokens[index + 1].next  // skip the key and its value
        }
        keys.sort { compare(input, $0.content, $1.content) < 0 }
        for pair in zip(keys, keys.dropFirst()) where compare(input, pair.0.content, pair.1.content) == 0 {
            throw BencodeError(.duplicateKey, at: max(pair.0.start, pair.1.start))
        }
    }
}
