package io.graphrec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.Transaction;

/**
 * Neo4j Community, embedded, with its Bolt connector on a loopback port: a real server for
 * graphrec's development and CI, started without a Neo4j installation.
 *
 * <pre>
 *   NEO4J_PASSWORD=... java -cp target/classes:$(cat target/classpath.txt) \
 *       io.graphrec.EmbeddedNeo4j --data DIR [--port 7687] [--pagecache 512m] [--plugins DIR]
 * </pre>
 *
 * {@code --plugins DIR}: a plugin folder (Neo4j's {@code plugins/}), e.g. the Graph Data
 * Science jars of {@code gds/pom.xml}, whose {@code gds.*} procedures are then allowed.
 *
 * The password of user {@code neo4j} is taken from the environment (never from arguments, so
 * it does not show in process lists). Prints {@code READY bolt://127.0.0.1:PORT} once Bolt
 * accepts connections and runs until killed (SIGTERM shuts the database down cleanly).
 */
public final class EmbeddedNeo4j {
    public static void main(String[] args) throws Exception {
        Path data = null;
        int port = 7687;
        String pagecache = "512m";
        Path plugins = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--data" -> data = Path.of(args[++i]);
                case "--port" -> port = Integer.parseInt(args[++i]);
                case "--pagecache" -> pagecache = args[++i];
                case "--plugins" -> plugins = Path.of(args[++i]);
                default -> fail("unknown argument " + args[i]);
            }
        }
        if (data == null) {
            fail("--data DIR is required");
        }
        String password = System.getenv("NEO4J_PASSWORD");
        if (password == null || password.length() < 8) {
            fail("set NEO4J_PASSWORD (at least 8 characters)");
        }
        Files.createDirectories(data);
        DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(data);
        if (plugins != null) {
            // procedures are read from the plugin folder (its jars must be on the classpath
            // too: GDS registers its procedure facade through an extension found there)
            builder.setConfig(GraphDatabaseSettings.plugin_dir, plugins.toAbsolutePath());
            builder.setConfig(GraphDatabaseSettings.procedure_unrestricted, List.of("gds.*"));
        }
        DatabaseManagementService dbms = builder
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .setConfig(HttpConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(GraphDatabaseSettings.pagecache_memory, parseBytes(pagecache))
                .setConfig(GraphDatabaseSettings.transaction_timeout, Duration.ofMinutes(30))
                .build();
        Runtime.getRuntime().addShutdownHook(new Thread(dbms::shutdown));
        GraphDatabaseService system = dbms.database("system");
        try (Transaction tx = system.beginTx()) {
            tx.execute("ALTER USER neo4j SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
            tx.commit();
        } catch (RuntimeException e) {
            // a restart on an existing store with the same password is fine; anything else
            // ends the process (a main thread that dies would leave the server running)
            String msg = String.valueOf(e.getMessage());
            if (!msg.contains("cannot be the same")) {
                fail("cannot set the password of user neo4j: " + msg.lines().findFirst().orElse(""));
            }
        }
        System.out.println("READY bolt://127.0.0.1:" + port);
        System.out.flush();
        Thread.currentThread().join();
    }

    private static long parseBytes(String s) {
        String t = s.trim().toLowerCase();
        long unit = 1;
        if (t.endsWith("g")) { unit = 1L << 30; t = t.substring(0, t.length() - 1); }
        else if (t.endsWith("m")) { unit = 1L << 20; t = t.substring(0, t.length() - 1); }
        else if (t.endsWith("k")) { unit = 1L << 10; t = t.substring(0, t.length() - 1); }
        return Long.parseLong(t) * unit;
    }

    private static void fail(String message) {
        System.err.println("EmbeddedNeo4j: " + message);
        System.exit(2);
    }
}
