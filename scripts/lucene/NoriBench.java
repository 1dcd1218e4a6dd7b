// Lucene + nori BM25 for scripts/bench_lucene.py (compiled by it against Debian's liblucene8-java jars).
//
//   java -cp JARS:CLASSES NoriBench PASSAGES MODE K1:B[,K1:B...] DEPTH OUT QUERYSET...
//
// PASSAGES: one passage per line, its indexed text (title + "\n" + text, escaped: \\ \n \t \r).
// MODE: nori decompound mode (none | discard | mixed); the analyzer is Lucene's KoreanAnalyzer
// (nori tokenizer, the default POS stop tags, reading form, lower case), as Elasticsearch's `nori`.
// Each QUERYSET is NAME=FILE[:timed] (one question a line, escaped the same way). For each K1:B the
// questions of every set are searched one at a time, single thread, and the DEPTH best passages (their
// line numbers) written to OUT/NAME-K1-B.txt, one line per question. A `timed` set is first searched
// five times to warm up, then timed over three more passes (top 10, ids mapped like the recall runs).
// Prints one JSON object: index build seconds and, per K1:B and timed set, queries/s of each pass.

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.ko.KoreanAnalyzer;
import org.apache.lucene.analysis.ko.KoreanPartOfSpeechStopFilter;
import org.apache.lucene.analysis.ko.KoreanTokenizer;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.NumericDocValuesField;
import org.apache.lucene.document.TextField;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.NumericDocValues;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.TopDocs;
import org.apache.lucene.search.similarities.BM25Similarity;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.util.QueryBuilder;

public class NoriBench {
    static final String FIELD = "body";

    static String unescape(String s) {
        if (s.indexOf('\\') < 0) return s;
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length()) {
                char n = s.charAt(++i);
                b.append(n == 'n' ? '\n' : n == 't' ? '\t' : n == 'r' ? '\r' : n);
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    static List<String> lines(Path p) throws IOException {
        List<String> out = new ArrayList<>();
        for (String l : Files.readAllLines(p, StandardCharsets.UTF_8)) out.add(unescape(l));
        return out;
    }

    /** Lucene doc id -> passage line number (read back from doc values, not assumed). */
    static int[] passageOf(DirectoryReader reader) throws IOException {
        int[] map = new int[reader.maxDoc()];
        for (LeafReaderContext leaf : reader.leaves()) {
            NumericDocValues dv = leaf.reader().getNumericDocValues("idx");
            for (int d = dv.nextDoc(); d != NumericDocValues.NO_MORE_DOCS; d = dv.nextDoc()) {
                map[leaf.docBase + d] = (int) dv.longValue();
            }
        }
        return map;
    }

    static int[] search(IndexSearcher searcher, QueryBuilder qb, int[] map, String q, int k) throws IOException {
        Query query = qb.createBooleanQuery(FIELD, q);
        if (query == null) return new int[0];          // nothing left after analysis
        TopDocs top = searcher.search(query, k);
        int[] ids = new int[top.scoreDocs.length];
        for (int i = 0; i < ids.length; i++) ids[i] = map[top.scoreDocs[i].doc];
        return ids;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 6) {
            System.err.println("usage: NoriBench PASSAGES MODE K1:B[,K1:B...] DEPTH OUT NAME=FILE[:timed]...");
            System.exit(2);
        }
        List<String> passages = lines(Paths.get(args[0]));
        KoreanTokenizer.DecompoundMode mode = KoreanTokenizer.DecompoundMode.valueOf(args[1].toUpperCase(Locale.ROOT));
        String[] params = args[2].split(",");
        int depth = Integer.parseInt(args[3]);
        Path out = Paths.get(args[4]);
        Analyzer analyzer = new KoreanAnalyzer(null, mode, KoreanPartOfSpeechStopFilter.DEFAULT_STOP_TAGS, false);

        Path dir = Files.createTempDirectory("noribench");
        long t0 = System.nanoTime();
        try (Directory d = FSDirectory.open(dir)) {
            IndexWriterConfig iwc = new IndexWriterConfig(analyzer);
            iwc.setSimilarity(new BM25Similarity());       // norms are the same for every k1/b
            try (IndexWriter w = new IndexWriter(d, iwc)) {
                for (int i = 0; i < passages.size(); i++) {
                    Document doc = new Document();
                    doc.add(new TextField(FIELD, passages.get(i), Field.Store.NO));
                    doc.add(new NumericDocValuesField("idx", i));
                    w.addDocument(doc);
                }
                w.forceMerge(1);
            }
            double buildSeconds = (System.nanoTime() - t0) / 1e9;
            StringBuilder json = new StringBuilder();
            json.append(String.format(Locale.ROOT, "{\"mode\": \"%s\", \"passages\": %d, \"build_seconds\": %.3f, "
                    + "\"lucene\": \"%s\", \"runs\": [", args[1], passages.size(), buildSeconds,
                    org.apache.lucene.util.Version.LATEST));
            try (DirectoryReader reader = DirectoryReader.open(d)) {
                int[] map = passageOf(reader);
                IndexSearcher searcher = new IndexSearcher(reader);      // no executor: one thread
                QueryBuilder qb = new QueryBuilder(analyzer);
                for (int p = 0; p < params.length; p++) {
                    String[] kb = params[p].split(":");
                    float k1 = Float.parseFloat(kb[0]), b = Float.parseFloat(kb[1]);
                    searcher.setSimilarity(new BM25Similarity(k1, b));
                    json.append(p > 0 ? ", " : "").append(String.format(Locale.ROOT,
                            "{\"k1\": %s, \"b\": %s, \"timed\": {", kb[0], kb[1]));
                    int timedSets = 0;
                    for (int a = 5; a < args.length; a++) {
                        String spec = args[a];
                        boolean timed = spec.endsWith(":timed");
                        if (timed) spec = spec.substring(0, spec.length() - ":timed".length());
                        String name = spec.substring(0, spec.indexOf('='));
                        List<String> qs = lines(Paths.get(spec.substring(spec.indexOf('=') + 1)));
                        Path file = out.resolve(name + "-" + kb[0] + "-" + kb[1] + ".txt");
                        try (BufferedWriter bw = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
                            for (String q : qs) {
                                int[] ids = search(searcher, qb, map, q, depth);
                                StringBuilder line = new StringBuilder();
                                for (int i = 0; i < ids.length; i++) line.append(i > 0 ? " " : "").append(ids[i]);
                                bw.write(line.toString());
                                bw.newLine();
                            }
                        }
                        if (!timed) continue;
                        long sink = 0;
                        for (int rep = 0; rep < 5; rep++)                                      // warm-up
                            for (String q : qs) sink += search(searcher, qb, map, q, 10).length;
                        json.append(timedSets++ > 0 ? ", " : "").append("\"").append(name).append("\": [");
                        for (int rep = 0; rep < 3; rep++) {
                            long s = System.nanoTime();
                            for (String q : qs) sink += search(searcher, qb, map, q, 10).length;
                            double secs = (System.nanoTime() - s) / 1e9;
                            json.append(rep > 0 ? ", " : "").append(String.format(Locale.ROOT, "%.1f", qs.size() / secs));
                        }
                        json.append("]");
                        if (sink < 0) System.err.println(sink);
                    }
                    json.append("}}");
                }
            }
            json.append("]}");
            System.out.println(json);
        } finally {
            try (var walk = Files.walk(dir)) {
                walk.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }
}
