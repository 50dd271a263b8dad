import Testing

@Test func placeholderSwarm() {}
