/// The swarm algorithms: placeholder until the piece picker lands.
enum ShoalSwarmPlaceholder {}
