import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.postgresql.PGStatement;

/**
 * pgjdbc against pgfence, one scenario per run: java PgjdbcScenarios SCENARIO. Connection settings
 * come from PGFENCE_* environment variables; the result is one JSON line on stdout, or exit 1 with
 * {"error": {type, sqlstate, message}} on stderr.
 */
public final class PgjdbcScenarios {
  private static final String ROWS_SQL = "SELECT g FROM generate_series(1, 1000) AS g";
  private static final int NOTIFY_WAIT_MILLIS = 10_000; // an upper bound on the wait, not a synchronisation

  public static void main(String[] args) {
    if (args.length != 1) {
      System.err.println("usage: PgjdbcScenarios {prepared|batch|metadata|cursor|notify}");
      System.exit(2);
    }
    try {
      Map<String, Object> result =
          switch (args[0]) {
            case "prepared" -> prepared();
            case "batch" -> batch();
            case "metadata" -> metadata();
            case "cursor" -> cursor();
            case "notify" -> notifyScenario();
            default -> throw new IllegalArgumentException("unknown scenario " + args[0]);
          };
      System.out.println(json(result));
    } catch (Exception e) {
      Map<String, Object> error = new LinkedHashMap<>();
      error.put("type", e.getClass().getName());
      error.put("sqlstate", e instanceof SQLException sql ? sql.getSQLState() : null);
      error.put("message", String.valueOf(e.getMessage()).strip());
      System.err.println(json(Map.of("error", error)));
      System.exit(1);
    }
  }

  private static Connection connect() throws SQLException {
    String url = "jdbc:postgresql://" + System.getenv("PGFENCE_HOST") + ":" + System.getenv("PGFENCE_PORT") + "/" + System.getenv("PGFENCE_DATABASE");
    Properties props = new Properties();
    props.setProperty("user", System.getenv("PGFENCE_USER"));
    props.setProperty("password", System.getenv("PGFENCE_PASSWORD"));
    props.setProperty("connectTimeout", "10");
    props.setProperty("socketTimeout", "60");
    props.setProperty("ApplicationName", "pgfence-driver-test");
    return DriverManager.getConnection(url, props);
  }

  /** One PreparedStatement run 10 times: past prepareThreshold (5) pgjdbc switches to a named server statement. */
  private static Map<String, Object> prepared() throws SQLException {
    try (Connection c = connect();
        PreparedStatement ps = c.prepareStatement("SELECT ?::int * 2 AS doubled, note FROM items WHERE id = ?")) {
      PGStatement pg = ps.unwrap(PGStatement.class);
      List<Object> doubled = new ArrayList<>();
      List<Object> notes = new ArrayList<>();
      List<Object> serverPrepared = new ArrayList<>();
      for (int i = 1; i <= 10; i++) {
        ps.setInt(1, i);
        ps.setInt(2, 2 - i % 2);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          doubled.add(rs.getInt(1));
          notes.add(rs.getString(2));
        }
        serverPrepared.add(pg.isUseServerPrepare());
      }
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("prepareThreshold", pg.getPrepareThreshold());
      r.put("doubled", doubled);
      r.put("notes", notes);
      r.put("serverPrepared", serverPrepared);
      return r;
    }
  }

  /** A 250-row insert batch in autocommit, then an update batch in an explicit transaction. */
  private static Map<String, Object> batch() throws SQLException {
    try (Connection c = connect(); Statement st = c.createStatement()) {
      st.execute("CREATE TABLE jdbc_batch (id int PRIMARY KEY, note text NOT NULL)");
      int[] inserted;
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_batch (id, note) VALUES (?, ?)")) {
        for (int i = 1; i <= 250; i++) {
          ps.setInt(1, i);
          ps.setString(2, "batch " + i);
          ps.addBatch();
        }
        inserted = ps.executeBatch();
      }
      c.setAutoCommit(false);
      int[] updated;
      try (PreparedStatement ps = c.prepareStatement("UPDATE jdbc_batch SET note = note || ' updated' WHERE id % ? = 0")) {
        for (int k : new int[] {5, 7}) {
          ps.setInt(1, k);
          ps.addBatch();
        }
        updated = ps.executeBatch();
      }
      c.commit();
      c.setAutoCommit(true);
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("insertCounts", inserted.length);
      r.put("inserted", sum(inserted));
      r.put("updateCounts", List.of(updated[0], updated[1]));
      try (ResultSet rs = st.executeQuery("SELECT count(*), sum(id), count(*) FILTER (WHERE note LIKE '% updated') FROM jdbc_batch")) {
        rs.next();
        r.put("rows", rs.getInt(1));
        r.put("sum", rs.getLong(2));
        r.put("updatedRows", rs.getInt(3));
      }
      return r;
    }
  }

  /** getTables and getColumns for `items` in the connection's schema (the tenant's, by the pin). */
  private static Map<String, Object> metadata() throws SQLException {
    try (Connection c = connect()) {
      DatabaseMetaData md = c.getMetaData();
      String schema = c.getSchema();
      List<Object> tables = new ArrayList<>();
      try (ResultSet rs = md.getTables(null, schema, "items", new String[] {"TABLE"})) {
        while (rs.next()) tables.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME"));
      }
      List<Object> columns = new ArrayList<>();
      try (ResultSet rs = md.getColumns(null, schema, "items", null)) {
        while (rs.next()) {
          columns.add(List.of(rs.getInt("ORDINAL_POSITION"), rs.getString("COLUMN_NAME"), rs.getString("TYPE_NAME"), rs.getString("IS_NULLABLE")));
        }
      }
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("product", md.getDatabaseProductName());
      r.put("driver", md.getDriverName());
      r.put("schema", schema);
      r.put("tables", tables);
      r.put("columns", columns);
      return r;
    }
  }

  /** 1,000 rows read 10 at a time through a portal (autocommit off, fetch size 10). */
  private static Map<String, Object> cursor() throws SQLException {
    try (Connection c = connect()) {
      c.setAutoCommit(false);
      long count = 0;
      long sum = 0;
      long openPortalsMidway = -1;
      try (Statement st = c.createStatement(); Statement probe = c.createStatement()) {
        st.setFetchSize(10);
        try (ResultSet rs = st.executeQuery(ROWS_SQL)) {
          while (rs.next()) {
            count++;
            sum += rs.getInt(1);
            if (count == 500) {
              // Halfway the portal is still open on the server, holding the other 500 rows.
              try (ResultSet p = probe.executeQuery("SELECT count(*) FROM pg_cursors WHERE statement = '" + ROWS_SQL + "'")) {
                p.next();
                openPortalsMidway = p.getLong(1);
              }
            }
          }
        }
      }
      c.commit();
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("count", count);
      r.put("sum", sum);
      r.put("openPortalsMidway", openPortalsMidway);
      return r;
    }
  }

  /** LISTEN on one connection, NOTIFY from another of the same tenant, getNotifications waits for it. */
  private static Map<String, Object> notifyScenario() throws SQLException {
    try (Connection listener = connect(); Connection notifier = connect()) {
      try (Statement st = listener.createStatement()) {
        st.execute("LISTEN events");
      }
      try (Statement st = notifier.createStatement()) {
        st.execute("NOTIFY events, 'hello from pgjdbc'");
      }
      PGNotification[] received = listener.unwrap(PGConnection.class).getNotifications(NOTIFY_WAIT_MILLIS);
      List<Object> notifications = new ArrayList<>();
      if (received != null) {
        for (PGNotification n : received) notifications.add(List.of(n.getName(), n.getParameter()));
      }
      return Map.of("notifications", notifications);
    }
  }

  private static long sum(int[] counts) {
    long total = 0;
    for (int n : counts) total += n;
    return total;
  }

  /** Just enough JSON for the results above: maps, lists, strings, numbers, booleans, null. */
  private static String json(Object value) {
    if (value == null) return "null";
    if (value instanceof Number || value instanceof Boolean) return value.toString();
    if (value instanceof Map<?, ?> map) {
      StringBuilder b = new StringBuilder("{");
      for (Map.Entry<?, ?> e : map.entrySet()) {
        if (b.length() > 1) b.append(',');
        b.append(json(String.valueOf(e.getKey()))).append(':').append(json(e.getValue()));
      }
      return b.append('}').toString();
    }
    if (value instanceof List<?> list) {
      StringBuilder b = new StringBuilder("[");
      for (Object item : list) {
        if (b.length() > 1) b.append(',');
        b.append(json(item));
      }
      return b.append(']').toString();
    }
    StringBuilder b = new StringBuilder("\"");
    for (char ch : value.toString().toCharArray()) {
      switch (ch) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> {
          if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
          else b.append(ch);
        }
      }
    }
    return b.append('"').toString();
  }
}
