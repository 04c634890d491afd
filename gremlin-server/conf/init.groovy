// binds the traversal source `g` over the TinkerGraph `graph` of gremlin-server.yaml
def globals = [:]
globals << [g : traversal().withEmbedded(graph)]
