/*
 * WsClient: the JDK's own WebSocket client (java.net.http, Java 17+) as a test
 * fixture for wstap. A single-file program: `java` compiles it on the fly.
 *
 * Usage:
 *   java [-Djavax.net.ssl.trustStore=FILE -Djavax.net.ssl.trustStorePassword=changeit] \
 *        testdata/java/WsClient.java URL [--proxy HOST:PORT] [--messages N] [--pings N] \
 *        [--subprotocol NAME] [--header 'Name: value']... [--timeout SECONDS]
 *
 * It connects to URL (ws:// or wss://), sends N pings one at a time and waits
 * for each pong (printing its round-trip time), sends N text messages one at a
 * time and waits for each echo, then sends a close frame (1000, "bye") and
 * waits for the server's close frame. The last line of output is machine
 * readable:
 *   RESULT ok pongs=N echoes=N close=CODE                  exit status 0
 *   RESULT fail <exception class>: <message>                exit status 1
 * A usage error prints "RESULT usage ..." and exits with status 2.
 *
 * TLS: the trust store is the JVM's, so trust wstap's CA with
 *   wstap ca export --format p12 --out wstap-ca.p12
 *   java -Djavax.net.ssl.trustStore=wstap-ca.p12 -Djavax.net.ssl.trustStorePassword=changeit \
 *        testdata/java/WsClient.java wss://localhost:8443/ --messages 3 --pings 3
 * Without it, a wss connection through wstap fails with
 * javax.net.ssl.SSLHandshakeException (PKIX path building failed).
 *
 * Through wstap's forward (CONNECT) proxy, as JMeter does with -H/-P:
 *   wstap proxy --listen 127.0.0.1:8080 &
 *   java -Djavax.net.ssl.trustStore=wstap-ca.p12 -Djavax.net.ssl.trustStorePassword=changeit \
 *        testdata/java/WsClient.java wss://chat.example.com/ws --proxy 127.0.0.1:8080
 * --proxy installs ProxySelector.of(host:port). That selector has no
 * non-proxy-hosts list (unlike the system selector behind -Dhttp.proxyHost,
 * whose default http.nonProxyHosts skips localhost and 127.*), so loopback
 * targets such as ws://localhost:PORT go through the proxy too. The JDK's
 * WebSocket client always tunnels through an HTTP proxy with
 * "CONNECT host:port", for ws:// as well as wss://.
 */

import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.time.Duration;

public class WsClient {

    /** Options holds the parsed command line. */
    static final class Options {
        URI uri;
        String proxyHost;
        int proxyPort;
        int messages = 1;
        int pings = 1;
        String subprotocol;
        List<String[]> headers = new ArrayList<>();
        long timeoutSeconds = 10;
    }

    public static void main(String[] args) {
        Options o;
        try {
            o = parse(args);
        } catch (IllegalArgumentException e) {
            System.out.println("RESULT usage " + e.getMessage());
            System.exit(2);
            return;
        }
        try {
            String summary = run(o);
            System.out.println("RESULT ok " + summary);
            System.exit(0);
        } catch (Throwable t) {
            Throwable c = unwrap(t);
            System.out.println("RESULT fail " + c.getClass().getName() + ": " + c.getMessage());
            System.exit(1);
        }
    }

    static Options parse(String[] args) {
        Options o = new Options();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--")) {
                if (o.uri != null) {
                    throw new IllegalArgumentException("unexpected argument " + a);
                }
                o.uri = URI.create(a);
                continue;
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(a + " needs a value");
            }
            String v = args[++i];
            try {
                switch (a) {
                    case "--proxy": {
                        int colon = v.lastIndexOf(':');
                        if (colon <= 0) {
                            throw new IllegalArgumentException("--proxy " + v + ": want host:port");
                        }
                        o.proxyHost = v.substring(0, colon);
                        o.proxyPort = Integer.parseInt(v.substring(colon + 1));
                        break;
                    }
                    case "--messages":
                        o.messages = Integer.parseInt(v);
                        break;
                    case "--pings":
                        o.pings = Integer.parseInt(v);
                        break;
                    case "--subprotocol":
                        o.subprotocol = v;
                        break;
                    case "--header": {
                        int colon = v.indexOf(':');
                        if (colon <= 0) {
                            throw new IllegalArgumentException("--header " + v + ": want 'Name: value'");
                        }
                        o.headers.add(new String[] {v.substring(0, colon).trim(), v.substring(colon + 1).trim()});
                        break;
                    }
                    case "--timeout":
                        o.timeoutSeconds = Long.parseLong(v);
                        break;
                    default:
                        throw new IllegalArgumentException("unknown flag " + a);
                }
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(a + " " + v + ": not a number");
            }
        }
        if (o.uri == null) {
            throw new IllegalArgumentException("missing URL (ws://... or wss://...)");
        }
        return o;
    }

    static String run(Options o) throws Exception {
        HttpClient.Builder hb = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(o.timeoutSeconds));
        if (o.proxyHost != null) {
            hb.proxy(ProxySelector.of(new InetSocketAddress(o.proxyHost, o.proxyPort)));
        }
        HttpClient client = hb.build();
        WebSocket.Builder wb = client.newWebSocketBuilder().connectTimeout(Duration.ofSeconds(o.timeoutSeconds));
        if (o.subprotocol != null) {
            wb.subprotocols(o.subprotocol);
        }
        for (String[] h : o.headers) {
            wb.header(h[0], h[1]);
        }
        Listener l = new Listener();
        long t0 = System.nanoTime();
        WebSocket ws = wb.buildAsync(o.uri, l).get(o.timeoutSeconds, TimeUnit.SECONDS);
        System.out.printf("connected %s in %.1f ms%s subprotocol=%s%n", o.uri, ms(System.nanoTime() - t0),
                o.proxyHost != null ? " via proxy " + o.proxyHost + ":" + o.proxyPort : "",
                ws.getSubprotocol().isEmpty() ? "-" : ws.getSubprotocol());

        int pongs = 0;
        for (int i = 1; i <= o.pings; i++) {
            long sent = System.nanoTime();
            ByteBuffer payload = ByteBuffer.allocate(Long.BYTES).putLong(0, sent);
            ws.sendPing(payload).get(o.timeoutSeconds, TimeUnit.SECONDS);
            ByteBuffer pong = l.await(l.pongs, "pong " + i, o.timeoutSeconds);
            if (pong.remaining() != Long.BYTES || pong.getLong(0) != sent) {
                throw new IllegalStateException("pong " + i + " does not echo the ping's payload");
            }
            pongs++;
            System.out.printf("pong %d rtt_ms=%.3f%n", i, ms(System.nanoTime() - sent));
        }

        int echoes = 0;
        for (int i = 1; i <= o.messages; i++) {
            String msg = "wstap message " + i;
            long sent = System.nanoTime();
            ws.sendText(msg, true).get(o.timeoutSeconds, TimeUnit.SECONDS);
            String echo = l.await(l.texts, "echo " + i, o.timeoutSeconds);
            if (!echo.equals(msg)) {
                throw new IllegalStateException("echo " + i + " is \"" + echo + "\", sent \"" + msg + "\"");
            }
            echoes++;
            System.out.printf("echo %d rtt_ms=%.3f%n", i, ms(System.nanoTime() - sent));
        }

        ws.sendClose(WebSocket.NORMAL_CLOSURE, "bye").get(o.timeoutSeconds, TimeUnit.SECONDS);
        int code;
        try {
            code = l.closed.get(o.timeoutSeconds, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw new TimeoutException("no close frame from the server within " + o.timeoutSeconds + " s");
        }
        System.out.printf("closed by server with code %d reason \"%s\"%n", code, l.closeReason);
        return "pongs=" + pongs + " echoes=" + echoes + " close=" + code;
    }

    /** Listener collects pongs, whole text messages and the server's close. */
    static final class Listener implements WebSocket.Listener {
        final BlockingQueue<ByteBuffer> pongs = new LinkedBlockingQueue<>();
        final BlockingQueue<String> texts = new LinkedBlockingQueue<>();
        final CompletableFuture<Integer> closed = new CompletableFuture<>();
        volatile String closeReason = "";
        private StringBuilder partial = new StringBuilder();

        @Override
        public void onOpen(WebSocket ws) {
            ws.request(1);
        }

        @Override
        public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
            partial.append(data);
            if (last) {
                texts.add(partial.toString());
                partial = new StringBuilder();
            }
            ws.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onBinary(WebSocket ws, ByteBuffer data, boolean last) {
            ws.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onPing(WebSocket ws, ByteBuffer message) {
            // The JDK answers the server's pings itself.
            ws.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onPong(WebSocket ws, ByteBuffer message) {
            ByteBuffer copy = ByteBuffer.allocate(message.remaining());
            copy.put(message).flip();
            pongs.add(copy);
            ws.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onClose(WebSocket ws, int statusCode, String reason) {
            closeReason = reason;
            closed.complete(statusCode);
            return null;
        }

        @Override
        public void onError(WebSocket ws, Throwable error) {
            closed.completeExceptionally(error);
        }

        /** await takes the next item of q, failing early if the connection ends. */
        <T> T await(BlockingQueue<T> q, String what, long timeoutSeconds) throws Exception {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
            while (System.nanoTime() < deadline) {
                T item = q.poll(50, TimeUnit.MILLISECONDS);
                if (item != null) {
                    return item;
                }
                if (closed.isCompletedExceptionally()) {
                    closed.get(); // throws the connection's error
                }
                if (closed.isDone()) {
                    throw new IllegalStateException("server closed with code " + closed.get()
                            + " reason \"" + closeReason + "\" while waiting for " + what);
                }
            }
            throw new TimeoutException("no " + what + " within " + timeoutSeconds + " s");
        }
    }

    static double ms(long nanos) {
        return nanos / 1e6;
    }

    /** unwrap removes the future's wrappers so the RESULT line names the real failure. */
    static Throwable unwrap(Throwable t) {
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }
}
