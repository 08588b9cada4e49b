//===- ChatTemplate.cpp - The Jinja subset of DeepSeek's chat templates ---===//
#include "moec/runtime/ChatTemplate.h"

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <functional>

namespace moec {

namespace {

//===----------------------------------------------------------------------===//
// Values: Python's, as Jinja sees them.
//===----------------------------------------------------------------------===//

struct Value;
using Dict = std::map<std::string, Value>;

struct Value {
  enum Kind { Undefined, None, Bool, Int, String, List, Map, Namespace } kind = Undefined;
  bool b = false;
  int64_t i = 0;
  std::string s;
  std::shared_ptr<std::vector<Value>> list; ///< shared: Python's reference semantics
  std::shared_ptr<Dict> map;                ///< Map and Namespace

  static Value none() { return make(None); }
  static Value boolean(bool v) {
    Value x = make(Bool);
    x.b = v;
    return x;
  }
  static Value integer(int64_t v) {
    Value x = make(Int);
    x.i = v;
    return x;
  }
  static Value string(std::string v) {
    Value x = make(String);
    x.s = std::move(v);
    return x;
  }
  static Value makeList(std::vector<Value> items = {}) {
    Value x = make(List);
    x.list = std::make_shared<std::vector<Value>>(std::move(items));
    return x;
  }
  static Value makeMap(Kind kind = Map) {
    Value x = make(kind);
    x.map = std::make_shared<Dict>();
    return x;
  }

private:
  static Value make(Kind k) {
    Value x;
    x.kind = k;
    return x;
  }
};

const char *kindName(const Value &v) {
  switch (v.kind) {
  case Value::Undefined:
    return "undefined";
  case Value::None:
    return "none";
  case Value::Bool:
    return "bool";
  case Value::Int:
    return "int";
  case Value::String:
    return "string";
  case Value::List:
    return "list";
  case Value::Map:
    return "dict";
  case Value::Namespace:
    return "namespace";
  }
  return "?";
}

bool truthy(const Value &v) {
  switch (v.kind) {
  case Value::Undefined:
  case Value::None:
    return false;
  case Value::Bool:
    return v.b;
  case Value::Int:
    return v.i != 0;
  case Value::String:
    return !v.s.empty();
  case Value::List:
    return !v.list->empty();
  case Value::Map:
    return !v.map->empty();
  case Value::Namespace:
    return true;
  }
  return false;
}

std::string repr(const Value &v);

/// str(v), as {{ v }} prints it.
std::string str(const Value &v) {
  switch (v.kind) {
  case Value::Undefined:
    return "";
  case Value::None:
    return "None";
  case Value::Bool:
    return v.b ? "True" : "False";
  case Value::Int:
    return std::to_string(v.i);
  case Value::String:
    return v.s;
  default:
    return repr(v);
  }
}

std::string repr(const Value &v) {
  switch (v.kind) {
  case Value::String: {
    std::string out = "'";
    for (char c : v.s)
      out += c == '\'' ? std::string("\\'") : c == '\n' ? std::string("\\n") : std::string(1, c);
    return out + "'";
  }
  case Value::List: {
    std::string out = "[";
    for (size_t k = 0; k < v.list->size(); ++k)
      out += (k ? ", " : "") + repr((*v.list)[k]);
    return out + "]";
  }
  case Value::Map:
  case Value::Namespace: {
    std::string out = v.kind == Value::Map ? "{" : "<Namespace {";
    bool first = true;
    for (const auto &[key, value] : *v.map) {
      out += (first ? "'" : ", '") + key + "': " + repr(value);
      first = false;
    }
    return out + (v.kind == Value::Map ? "}" : "}>");
  }
  default:
    return str(v);
  }
}

bool equal(const Value &a, const Value &b) {
  if ((a.kind == Value::Int || a.kind == Value::Bool) &&
      (b.kind == Value::Int || b.kind == Value::Bool))
    return (a.kind == Value::Int ? a.i : a.b) == (b.kind == Value::Int ? b.i : b.b);
  if (a.kind != b.kind)
    return false;
  switch (a.kind) {
  case Value::Undefined:
  case Value::None:
    return true;
  case Value::String:
    return a.s == b.s;
  case Value::List:
    if (a.list->size() != b.list->size())
      return false;
    for (size_t k = 0; k < a.list->size(); ++k)
      if (!equal((*a.list)[k], (*b.list)[k]))
        return false;
    return true;
  default:
    return a.map == b.map;
  }
}

//===----------------------------------------------------------------------===//
// Errors carry the template line.
//===----------------------------------------------------------------------===//

struct Failure {
  int line;
  std::string message;
};

[[noreturn]] void fail(int line, std::string message) { throw Failure{line, std::move(message)}; }

//===----------------------------------------------------------------------===//
// Expressions.
//===----------------------------------------------------------------------===//

struct Scope;

struct Expr {
  enum Kind {
    Literal, Name, Attr, Item, Call, Filter, Test, Not, Neg, Binary, Cond, ListLit
  } kind;
  int line = 0;
  Value literal;                             ///< Literal
  std::string name;                          ///< Name, Attr, Filter, Test, Binary's operator
  std::vector<std::unique_ptr<Expr>> args;   ///< operands / call arguments
  std::vector<std::string> keywords;         ///< Call: names of the trailing keyword args
  bool negate = false;                       ///< Test: "is not"
};
using ExprPtr = std::unique_ptr<Expr>;

ExprPtr makeExpr(Expr::Kind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

} // namespace

//===----------------------------------------------------------------------===//
// Statements.
//===----------------------------------------------------------------------===//

struct ChatTemplate::Node {
  enum Kind { Text, Output, If, For, Set } kind;
  int line = 0;
  std::string text;                                 ///< Text
  ExprPtr expr;                                     ///< Output, For's iterable, Set's value
  std::vector<std::pair<ExprPtr, std::vector<std::unique_ptr<Node>>>> branches; ///< If
  std::vector<std::unique_ptr<Node>> body, orelse; ///< For (and If's else)
  std::vector<std::string> targets;                 ///< For: loop variables; Set: name[, attr]
};

namespace {

using Node = ChatTemplate::Node;
using NodeList = std::vector<std::unique_ptr<Node>>;

//===----------------------------------------------------------------------===//
// Lexing: the template into text and tags; a tag's text into tokens.
//===----------------------------------------------------------------------===//

struct Chunk {
  enum Kind { Text, Output, Block } kind;
  std::string text; ///< the text, or the tag's inside
  int line;
};

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/// Splits the source into text and tags, applying whitespace control ("-"),
/// trim_blocks (the newline after a block tag is dropped) and lstrip_blocks (spaces
/// and tabs from a line's start to a block tag are dropped), as transformers sets
/// its Jinja environment.
std::vector<Chunk> splitSource(const std::string &src) {
  std::vector<Chunk> chunks;
  size_t pos = 0;
  int line = 1;
  bool stripNext = false, trimNewline = false;
  auto countLines = [&](size_t from, size_t to) {
    line += int(std::count(src.begin() + from, src.begin() + to, '\n'));
  };
  while (pos <= src.size()) {
    size_t open = src.find('{', pos);
    while (open != std::string::npos && open + 1 < src.size() && src[open + 1] != '{' &&
           src[open + 1] != '%' && src[open + 1] != '#')
      open = src.find('{', open + 1);
    if (open != std::string::npos && open + 1 >= src.size())
      open = std::string::npos;
    std::string text = src.substr(pos, open == std::string::npos ? std::string::npos : open - pos);
    int textLine = line;
    countLines(pos, open == std::string::npos ? src.size() : open);
    if (stripNext) {
      size_t k = 0;
      while (k < text.size() && isSpace(text[k]))
        ++k;
      text.erase(0, k);
    } else if (trimNewline && !text.empty() && text[0] == '\n') {
      text.erase(0, 1);
    }
    stripNext = trimNewline = false;
    if (open == std::string::npos) {
      if (!text.empty())
        chunks.push_back({Chunk::Text, text, textLine});
      break;
    }
    char kind = src[open + 1];
    const char *close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t inner = open + 2;
    bool leftStrip = inner < src.size() && src[inner] == '-';
    bool leftKeep = inner < src.size() && src[inner] == '+';
    if (leftStrip || leftKeep)
      ++inner;
    // The closing delimiter, outside string literals.
    size_t end = inner;
    char quote = 0;
    for (; end + 1 < src.size(); ++end) {
      char c = src[end];
      if (quote) {
        if (c == '\\')
          ++end;
        else if (c == quote)
          quote = 0;
        continue;
      }
      if (kind != '#' && (c == '\'' || c == '"'))
        quote = c;
      else if (c == close[0] && src[end + 1] == close[1])
        break;
    }
    if (end + 1 >= src.size())
      fail(line, std::string("unterminated tag: no \"") + close + "\"");
    bool rightStrip = end > inner && src[end - 1] == '-';
    std::string body = src.substr(inner, (rightStrip ? end - 1 : end) - inner);
    if (leftStrip) {
      size_t k = text.size();
      while (k > 0 && isSpace(text[k - 1]))
        --k;
      text.erase(k);
    } else if (kind != '{' && !leftKeep) {
      // lstrip_blocks: spaces and tabs between a line's start (in the source) and a
      // block or comment tag go.
      size_t b = open;
      while (b > pos && (src[b - 1] == ' ' || src[b - 1] == '\t'))
        --b;
      if (b == 0 || src[b - 1] == '\n')
        text.erase(text.size() - std::min(text.size(), open - b));
    }
    if (!text.empty())
      chunks.push_back({Chunk::Text, text, textLine});
    int tagLine = line;
    countLines(open, end + 2);
    if (kind == '{')
      chunks.push_back({Chunk::Output, body, tagLine});
    else if (kind == '%')
      chunks.push_back({Chunk::Block, body, tagLine});
    stripNext = rightStrip;
    trimNewline = kind != '{' && !rightStrip;
    pos = end + 2;
  }
  return chunks;
}

struct Token {
  enum Kind { Name, Str, Int, Op, End } kind;
  std::string text;
};

std::vector<Token> lexTag(const std::string &s, int line) {
  std::vector<Token> out;
  size_t k = 0;
  while (k < s.size()) {
    char c = s[k];
    if (isSpace(c)) {
      ++k;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t b = k;
      while (k < s.size() && (std::isalnum(static_cast<unsigned char>(s[k])) || s[k] == '_'))
        ++k;
      out.push_back({Token::Name, s.substr(b, k - b)});
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t b = k;
      while (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k])))
        ++k;
      if (k < s.size() && s[k] == '.')
        fail(line, "floating-point literals are not supported");
      out.push_back({Token::Int, s.substr(b, k - b)});
      continue;
    }
    if (c == '\'' || c == '"') {
      std::string text;
      ++k;
      while (k < s.size() && s[k] != c) {
        if (s[k] == '\\' && k + 1 < s.size()) {
          char e = s[++k];
          switch (e) {
          case 'n':
            text += '\n';
            break;
          case 't':
            text += '\t';
            break;
          case 'r':
            text += '\r';
            break;
          case '\\':
          case '\'':
          case '"':
            text += e;
            break;
          default:
            text += '\\';
            text += e;
          }
          ++k;
          continue;
        }
        text += s[k++];
      }
      if (k >= s.size())
        fail(line, "unterminated string literal");
      ++k;
      out.push_back({Token::Str, text});
      continue;
    }
    static const char *const twoChar[] = {"==", "!=", "<=", ">="};
    bool matched = false;
    for (const char *op : twoChar)
      if (s.compare(k, 2, op) == 0) {
        out.push_back({Token::Op, op});
        k += 2;
        matched = true;
        break;
      }
    if (matched)
      continue;
    if (std::strchr("()[]{}.,:=<>+-~|*/%", c)) {
      out.push_back({Token::Op, std::string(1, c)});
      ++k;
      continue;
    }
    fail(line, std::string("unexpected character '") + c + "'");
  }
  out.push_back({Token::End, ""});
  return out;
}

//===----------------------------------------------------------------------===//
// Parsing.
//===----------------------------------------------------------------------===//

class ExprParser {
public:
  ExprParser(std::vector<Token> tokens, int line) : t_(std::move(tokens)), line_(line) {}

  const Token &peek() const { return t_[k_]; }
  bool atName(const char *name) const { return peek().kind == Token::Name && peek().text == name; }
  bool atOp(const char *op) const { return peek().kind == Token::Op && peek().text == op; }
  bool atEnd() const { return peek().kind == Token::End; }
  Token next() { return t_[k_ < t_.size() - 1 ? k_++ : k_]; }
  void expectOp(const char *op) {
    if (!atOp(op))
      fail(line_, std::string("expected '") + op + "', found '" + peek().text + "'");
    next();
  }
  std::string expectName() {
    if (peek().kind != Token::Name)
      fail(line_, "expected a name, found '" + peek().text + "'");
    return next().text;
  }
  void expectEnd() {
    if (!atEnd())
      fail(line_, "unexpected '" + peek().text + "'");
  }

  ExprPtr expression() {
    ExprPtr e = orExpr();
    if (atName("if")) { // a if c else b
      next();
      ExprPtr cond = orExpr();
      ExprPtr otherwise;
      if (atName("else")) {
        next();
        otherwise = expression();
      } else {
        otherwise = makeExpr(Expr::Literal, line_); // undefined
      }
      ExprPtr c = makeExpr(Expr::Cond, line_);
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(otherwise));
      return c;
    }
    return e;
  }

private:
  ExprPtr binary(const std::string &op, ExprPtr a, ExprPtr b) {
    ExprPtr e = makeExpr(Expr::Binary, line_);
    e->name = op;
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }
  ExprPtr orExpr() {
    ExprPtr e = andExpr();
    while (atName("or")) {
      next();
      e = binary("or", std::move(e), andExpr());
    }
    return e;
  }
  ExprPtr andExpr() {
    ExprPtr e = notExpr();
    while (atName("and")) {
      next();
      e = binary("and", std::move(e), notExpr());
    }
    return e;
  }
  ExprPtr notExpr() {
    if (atName("not")) {
      next();
      ExprPtr e = makeExpr(Expr::Not, line_);
      e->args.push_back(notExpr());
      return e;
    }
    return comparison();
  }
  ExprPtr comparison() {
    ExprPtr e = concat();
    for (;;) {
      if (atOp("==") || atOp("!=") || atOp("<") || atOp(">") || atOp("<=") || atOp(">=")) {
        std::string op = next().text;
        e = binary(op, std::move(e), concat());
      } else if (atName("in")) {
        next();
        e = binary("in", std::move(e), concat());
      } else if (atName("not") && t_[k_ + 1].kind == Token::Name && t_[k_ + 1].text == "in") {
        next();
        next();
        e = binary("not in", std::move(e), concat());
      } else if (atName("is")) {
        next();
        ExprPtr test = makeExpr(Expr::Test, line_);
        if (atName("not")) {
          next();
          test->negate = true;
        }
        test->name = expectName();
        static const char *const tests[] = {"defined", "undefined", "none", "string",
                                            "number", "true", "false", "mapping",
                                            "sequence", "iterable"};
        if (std::none_of(std::begin(tests), std::end(tests),
                         [&](const char *t) { return test->name == t; }))
          fail(line_, "unsupported test 'is " + test->name + "'");
        test->args.push_back(std::move(e));
        e = std::move(test);
      } else {
        return e;
      }
    }
  }
  ExprPtr concat() {
    ExprPtr e = additive();
    while (atOp("~")) {
      next();
      e = binary("~", std::move(e), additive());
    }
    return e;
  }
  ExprPtr additive() {
    ExprPtr e = unary();
    while (atOp("+") || atOp("-")) {
      std::string op = next().text;
      e = binary(op, std::move(e), unary());
    }
    return e;
  }
  ExprPtr unary() {
    if (atOp("-")) {
      next();
      ExprPtr e = makeExpr(Expr::Neg, line_);
      e->args.push_back(unary());
      return e;
    }
    if (atOp("*") || atOp("/") || atOp("%"))
      fail(line_, "operator '" + peek().text + "' is not supported");
    return filtered();
  }
  ExprPtr filtered() {
    ExprPtr e = postfix();
    while (atOp("|")) {
      next();
      ExprPtr f = makeExpr(Expr::Filter, line_);
      f->name = expectName();
      static const char *const filters[] = {"trim", "length", "count", "string", "lower",
                                            "upper"};
      if (std::none_of(std::begin(filters), std::end(filters),
                       [&](const char *n) { return f->name == n; }))
        fail(line_, "unsupported filter '|" + f->name + "'");
      f->args.push_back(std::move(e));
      e = std::move(f);
    }
    return e;
  }
  ExprPtr postfix() {
    ExprPtr e = primary();
    for (;;) {
      if (atOp(".")) {
        next();
        ExprPtr a = makeExpr(Expr::Attr, line_);
        a->name = expectName();
        a->args.push_back(std::move(e));
        e = std::move(a);
      } else if (atOp("[")) {
        next();
        if (atOp(":"))
          fail(line_, "slices are not supported");
        ExprPtr a = makeExpr(Expr::Item, line_);
        a->args.push_back(std::move(e));
        a->args.push_back(expression());
        if (atOp(":"))
          fail(line_, "slices are not supported");
        expectOp("]");
        e = std::move(a);
      } else if (atOp("(")) {
        next();
        ExprPtr c = makeExpr(Expr::Call, line_);
        c->args.push_back(std::move(e));
        while (!atOp(")")) {
          if (peek().kind == Token::Name && t_[k_ + 1].kind == Token::Op &&
              t_[k_ + 1].text == "=") {
            c->keywords.push_back(next().text);
            next();
          } else if (!c->keywords.empty()) {
            fail(line_, "a positional argument follows keyword arguments");
          }
          c->args.push_back(expression());
          if (!atOp(","))
            break;
          next();
        }
        expectOp(")");
        e = std::move(c);
      } else {
        return e;
      }
    }
  }
  ExprPtr primary() {
    Token t = next();
    if (t.kind == Token::Str) {
      ExprPtr e = makeExpr(Expr::Literal, line_);
      e->literal = Value::string(t.text);
      // Adjacent string literals concatenate, as in Python.
      while (peek().kind == Token::Str)
        e->literal.s += next().text;
      return e;
    }
    if (t.kind == Token::Int) {
      ExprPtr e = makeExpr(Expr::Literal, line_);
      e->literal = Value::integer(std::stoll(t.text));
      return e;
    }
    if (t.kind == Token::Name) {
      ExprPtr e = makeExpr(Expr::Literal, line_);
      if (t.text == "true" || t.text == "True")
        e->literal = Value::boolean(true);
      else if (t.text == "false" || t.text == "False")
        e->literal = Value::boolean(false);
      else if (t.text == "none" || t.text == "None")
        e->literal = Value::none();
      else {
        e->kind = Expr::Name;
        e->name = t.text;
      }
      return e;
    }
    if (t.kind == Token::Op && t.text == "(") {
      ExprPtr e = expression();
      expectOp(")");
      return e;
    }
    if (t.kind == Token::Op && t.text == "[") {
      ExprPtr e = makeExpr(Expr::ListLit, line_);
      while (!atOp("]")) {
        e->args.push_back(expression());
        if (!atOp(","))
          break;
        next();
      }
      expectOp("]");
      return e;
    }
    if (t.kind == Token::Op && t.text == "{")
      fail(line_, "dict literals are not supported");
    fail(line_, t.kind == Token::End ? std::string("an expression is missing")
                                     : "unexpected '" + t.text + "'");
  }

  std::vector<Token> t_;
  size_t k_ = 0;
  int line_;
};

class TemplateParser {
public:
  explicit TemplateParser(std::vector<Chunk> chunks) : chunks_(std::move(chunks)) {}

  NodeList parseAll() {
    std::string stop;
    NodeList body = parseBody({}, &stop);
    return body;
  }

private:
  /// Parses nodes until a block tag whose keyword is in `enders` (its keyword goes to
  /// `*ender`, its parser stays in `*enderParser`).
  NodeList parseBody(const std::vector<std::string> &enders, std::string *ender,
                     std::unique_ptr<ExprParser> *enderParser = nullptr) {
    NodeList nodes;
    while (k_ < chunks_.size()) {
      const Chunk &c = chunks_[k_++];
      if (c.kind == Chunk::Text) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Text;
        n->line = c.line;
        n->text = c.text;
        nodes.push_back(std::move(n));
        continue;
      }
      auto p = std::make_unique<ExprParser>(lexTag(c.text, c.line), c.line);
      if (c.kind == Chunk::Output) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Output;
        n->line = c.line;
        n->expr = p->expression();
        p->expectEnd();
        nodes.push_back(std::move(n));
        continue;
      }
      std::string keyword = p->expectName();
      if (std::find(enders.begin(), enders.end(), keyword) != enders.end()) {
        *ender = keyword;
        if (enderParser)
          *enderParser = std::move(p);
        return nodes;
      }
      if (keyword == "if") {
        nodes.push_back(parseIf(*p, c.line));
      } else if (keyword == "for") {
        nodes.push_back(parseFor(*p, c.line));
      } else if (keyword == "set") {
        nodes.push_back(parseSet(*p, c.line));
      } else {
        fail(c.line, "unsupported statement '{% " + keyword + " %}'");
      }
    }
    if (!enders.empty())
      fail(chunks_.empty() ? 1 : chunks_.back().line,
           "missing '{% " + enders.back() + " %}' at the end of the template");
    *ender = "";
    return nodes;
  }

  std::unique_ptr<Node> parseIf(ExprParser &p, int line) {
    auto n = std::make_unique<Node>();
    n->kind = Node::If;
    n->line = line;
    ExprPtr cond = p.expression();
    p.expectEnd();
    for (;;) {
      std::string ender;
      std::unique_ptr<ExprParser> next;
      NodeList body = parseBody({"elif", "else", "endif"}, &ender, &next);
      n->branches.emplace_back(std::move(cond), std::move(body));
      if (ender == "elif") {
        cond = next->expression();
        next->expectEnd();
        continue;
      }
      next->expectEnd();
      if (ender == "else") {
        std::string end;
        std::unique_ptr<ExprParser> endParser;
        n->orelse = parseBody({"endif"}, &end, &endParser);
        endParser->expectEnd();
      }
      return n;
    }
  }

  std::unique_ptr<Node> parseFor(ExprParser &p, int line) {
    auto n = std::make_unique<Node>();
    n->kind = Node::For;
    n->line = line;
    n->targets.push_back(p.expectName());
    while (p.atOp(",")) {
      p.next();
      n->targets.push_back(p.expectName());
    }
    if (n->targets.size() > 2)
      fail(line, "a for loop unpacks at most two names");
    if (!p.atName("in"))
      fail(line, "expected 'in' in the for loop");
    p.next();
    n->expr = p.expression();
    if (n->expr->kind == Expr::Cond)
      fail(line, "loop filters ('for x in y if c') are not supported");
    if (p.atName("recursive"))
      fail(line, "recursive loops are not supported");
    p.expectEnd();
    std::string ender;
    std::unique_ptr<ExprParser> next;
    n->body = parseBody({"else", "endfor"}, &ender, &next);
    next->expectEnd();
    if (ender == "else") {
      std::unique_ptr<ExprParser> endParser;
      n->orelse = parseBody({"endfor"}, &ender, &endParser);
      endParser->expectEnd();
    }
    return n;
  }

  std::unique_ptr<Node> parseSet(ExprParser &p, int line) {
    auto n = std::make_unique<Node>();
    n->kind = Node::Set;
    n->line = line;
    n->targets.push_back(p.expectName());
    if (p.atOp(".")) {
      p.next();
      n->targets.push_back(p.expectName());
    }
    if (!p.atOp("="))
      fail(line, "block assignments ('{% set x %}...{% endset %}') are not supported");
    p.next();
    n->expr = p.expression();
    p.expectEnd();
    return n;
  }

  std::vector<Chunk> chunks_;
  size_t k_ = 0;
};

//===----------------------------------------------------------------------===//
// Evaluation.
//===----------------------------------------------------------------------===//

struct Scope {
  std::vector<Dict> frames; ///< innermost last

  Value lookup(const std::string &name) const {
    for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
      auto v = it->find(name);
      if (v != it->end())
        return v->second;
    }
    Value undefined;
    undefined.s = name; // remembered for messages
    return undefined;
  }
};

class Renderer {
public:
  explicit Renderer(Scope scope) : scope_(std::move(scope)) {}

  void run(const NodeList &nodes, std::string &out) {
    for (const auto &n : nodes)
      exec(*n, out);
  }

private:
  void exec(const Node &n, std::string &out) {
    switch (n.kind) {
    case Node::Text:
      out += n.text;
      return;
    case Node::Output:
      out += str(eval(*n.expr));
      return;
    case Node::If:
      for (const auto &[cond, body] : n.branches)
        if (truthy(eval(*cond))) {
          run(body, out);
          return;
        }
      run(n.orelse, out);
      return;
    case Node::Set: {
      Value v = eval(*n.expr);
      if (n.targets.size() == 1) {
        scope_.frames.back()[n.targets[0]] = v;
        return;
      }
      Value ns = scope_.lookup(n.targets[0]);
      if (ns.kind != Value::Namespace)
        fail(n.line, "cannot set an attribute of '" + n.targets[0] + "', a " + kindName(ns) +
                         " (only a namespace's)");
      (*ns.map)[n.targets[1]] = v;
      return;
    }
    case Node::For: {
      Value seq = eval(*n.expr);
      std::vector<Value> items;
      if (seq.kind == Value::List)
        items = *seq.list;
      else if (seq.kind == Value::Map)
        for (const auto &kv : *seq.map)
          items.push_back(n.targets.size() == 2
                              ? Value::makeList({Value::string(kv.first), kv.second})
                              : Value::string(kv.first));
      else if (seq.kind == Value::String)
        for (char c : seq.s)
          items.push_back(Value::string(std::string(1, c)));
      else if (seq.kind != Value::Undefined && seq.kind != Value::None)
        fail(n.line, std::string("cannot loop over a ") + kindName(seq));
      else if (seq.kind == Value::None)
        fail(n.line, "cannot loop over none");
      if (items.empty()) {
        run(n.orelse, out);
        return;
      }
      for (size_t k = 0; k < items.size(); ++k) {
        scope_.frames.emplace_back();
        Dict &frame = scope_.frames.back();
        if (n.targets.size() == 1) {
          frame[n.targets[0]] = items[k];
        } else {
          const Value &pair = items[k];
          if (pair.kind != Value::List || pair.list->size() != 2)
            fail(n.line, "cannot unpack a " + std::string(kindName(pair)) + " into two names");
          frame[n.targets[0]] = (*pair.list)[0];
          frame[n.targets[1]] = (*pair.list)[1];
        }
        Value loop = Value::makeMap();
        (*loop.map)["index"] = Value::integer(int64_t(k) + 1);
        (*loop.map)["index0"] = Value::integer(int64_t(k));
        (*loop.map)["first"] = Value::boolean(k == 0);
        (*loop.map)["last"] = Value::boolean(k + 1 == items.size());
        (*loop.map)["length"] = Value::integer(int64_t(items.size()));
        (*loop.map)["revindex"] = Value::integer(int64_t(items.size() - k));
        (*loop.map)["revindex0"] = Value::integer(int64_t(items.size() - k - 1));
        frame["loop"] = loop;
        run(n.body, out);
        scope_.frames.pop_back();
      }
      return;
    }
    }
  }

  Value attribute(const Value &obj, const std::string &name, int line) {
    if (obj.kind == Value::Map || obj.kind == Value::Namespace) {
      auto it = obj.map->find(name);
      if (it != obj.map->end())
        return it->second;
      return Value();
    }
    if (obj.kind == Value::Undefined)
      fail(line, "'" + obj.s + "' is undefined (reading ." + name + ")");
    return Value(); // methods are resolved by calls
  }

  Value item(const Value &obj, const Value &key, int line) {
    if (obj.kind == Value::Map || obj.kind == Value::Namespace) {
      if (key.kind != Value::String)
        return Value();
      auto it = obj.map->find(key.s);
      return it == obj.map->end() ? Value() : it->second;
    }
    if (obj.kind == Value::List || obj.kind == Value::String) {
      if (key.kind != Value::Int)
        fail(line, std::string("a ") + kindName(obj) + " index must be an int, not a " +
                       kindName(key));
      int64_t size = obj.kind == Value::List ? int64_t(obj.list->size()) : int64_t(obj.s.size());
      int64_t at = key.i < 0 ? key.i + size : key.i;
      if (at < 0 || at >= size)
        return Value();
      return obj.kind == Value::List ? (*obj.list)[size_t(at)]
                                     : Value::string(std::string(1, obj.s[size_t(at)]));
    }
    if (obj.kind == Value::Undefined)
      fail(line, "'" + obj.s + "' is undefined (reading an item of it)");
    fail(line, std::string("cannot index a ") + kindName(obj));
  }

  static std::string strip(const std::string &s, const std::string &chars, bool left,
                           bool right) {
    auto in = [&](char c) {
      return chars.empty() ? isSpace(c) : chars.find(c) != std::string::npos;
    };
    size_t b = 0, e = s.size();
    if (left)
      while (b < e && in(s[b]))
        ++b;
    if (right)
      while (e > b && in(s[e - 1]))
        --e;
    return s.substr(b, e - b);
  }

  Value call(const Expr &e) {
    const Expr &callee = *e.args[0];
    std::vector<Value> args;
    size_t positional = e.args.size() - 1 - e.keywords.size();
    for (size_t k = 1; k < e.args.size(); ++k)
      args.push_back(eval(*e.args[k]));
    auto needString = [&](size_t k, const char *method) -> const std::string & {
      if (k >= args.size() || args[k].kind != Value::String)
        fail(e.line, std::string(method) + "() needs a string argument");
      return args[k].s;
    };
    if (callee.kind == Expr::Name) {
      if (callee.name == "namespace") {
        Value ns = Value::makeMap(Value::Namespace);
        for (size_t k = 0; k < e.keywords.size(); ++k)
          (*ns.map)[e.keywords[k]] = args[positional + k];
        return ns;
      }
      if (callee.name == "raise_exception")
        fail(e.line, "the template raised an error: " + (args.empty() ? "" : str(args[0])));
      fail(e.line, "unsupported function '" + callee.name + "()'");
    }
    if (callee.kind != Expr::Attr)
      fail(e.line, "only functions and methods can be called");
    Value obj = eval(*callee.args[0]);
    const std::string &m = callee.name;
    if (obj.kind == Value::String) {
      const std::string &s = obj.s;
      if (m == "split") {
        std::vector<Value> parts;
        if (args.empty() || args[0].kind == Value::None) { // split on whitespace runs
          size_t k = 0;
          while (k < s.size()) {
            while (k < s.size() && isSpace(s[k]))
              ++k;
            size_t b = k;
            while (k < s.size() && !isSpace(s[k]))
              ++k;
            if (k > b)
              parts.push_back(Value::string(s.substr(b, k - b)));
          }
          return Value::makeList(std::move(parts));
        }
        const std::string &sep = needString(0, "split");
        if (sep.empty())
          fail(e.line, "split() with an empty separator");
        size_t b = 0;
        for (size_t at; (at = s.find(sep, b)) != std::string::npos; b = at + sep.size())
          parts.push_back(Value::string(s.substr(b, at - b)));
        parts.push_back(Value::string(s.substr(b)));
        return Value::makeList(std::move(parts));
      }
      if (m == "strip" || m == "lstrip" || m == "rstrip") {
        std::string chars = args.empty() || args[0].kind == Value::None ? "" : needString(0, m.c_str());
        return Value::string(strip(s, chars, m != "rstrip", m != "lstrip"));
      }
      if (m == "startswith")
        return Value::boolean(s.rfind(needString(0, "startswith"), 0) == 0);
      if (m == "endswith") {
        const std::string &x = needString(0, "endswith");
        return Value::boolean(s.size() >= x.size() &&
                              s.compare(s.size() - x.size(), x.size(), x) == 0);
      }
      if (m == "lower" || m == "upper") {
        std::string r = s;
        for (char &c : r)
          c = char(m == "lower" ? std::tolower(static_cast<unsigned char>(c))
                                : std::toupper(static_cast<unsigned char>(c)));
        return Value::string(r);
      }
      if (m == "replace") {
        const std::string &from = needString(0, "replace"), &to = needString(1, "replace");
        if (from.empty())
          fail(e.line, "replace() with an empty pattern");
        std::string r;
        size_t b = 0;
        for (size_t at; (at = s.find(from, b)) != std::string::npos; b = at + from.size())
          r += s.substr(b, at - b) + to;
        return Value::string(r + s.substr(b));
      }
    }
    if (obj.kind == Value::Map) {
      if (m == "get") {
        if (args.empty() || args[0].kind != Value::String)
          fail(e.line, "get() needs a key");
        auto it = obj.map->find(args[0].s);
        return it != obj.map->end() ? it->second : args.size() > 1 ? args[1] : Value::none();
      }
      if (m == "items" || m == "keys" || m == "values") {
        std::vector<Value> out;
        for (const auto &kv : *obj.map)
          out.push_back(m == "items"  ? Value::makeList({Value::string(kv.first), kv.second})
                        : m == "keys" ? Value::string(kv.first)
                                      : kv.second);
        return Value::makeList(std::move(out));
      }
    }
    if (obj.kind == Value::Undefined)
      fail(e.line, "'" + obj.s + "' is undefined (calling ." + m + "())");
    fail(e.line, std::string("unsupported method ") + kindName(obj) + "." + m + "()");
  }

  Value eval(const Expr &e) {
    switch (e.kind) {
    case Expr::Literal:
      return e.literal;
    case Expr::Name:
      return scope_.lookup(e.name);
    case Expr::Attr:
      return attribute(eval(*e.args[0]), e.name, e.line);
    case Expr::Item:
      return item(eval(*e.args[0]), eval(*e.args[1]), e.line);
    case Expr::Call:
      return call(e);
    case Expr::ListLit: {
      std::vector<Value> items;
      for (const auto &a : e.args)
        items.push_back(eval(*a));
      return Value::makeList(std::move(items));
    }
    case Expr::Not:
      return Value::boolean(!truthy(eval(*e.args[0])));
    case Expr::Neg: {
      Value v = eval(*e.args[0]);
      if (v.kind != Value::Int)
        fail(e.line, std::string("cannot negate a ") + kindName(v));
      return Value::integer(-v.i);
    }
    case Expr::Cond:
      return truthy(eval(*e.args[1])) ? eval(*e.args[0]) : eval(*e.args[2]);
    case Expr::Filter: {
      Value v = eval(*e.args[0]);
      if (e.name == "trim") {
        if (v.kind != Value::String)
          fail(e.line, std::string("|trim of a ") + kindName(v));
        return Value::string(strip(v.s, "", true, true));
      }
      if (e.name == "length" || e.name == "count") {
        if (v.kind == Value::String)
          return Value::integer(int64_t(v.s.size()));
        if (v.kind == Value::List)
          return Value::integer(int64_t(v.list->size()));
        if (v.kind == Value::Map)
          return Value::integer(int64_t(v.map->size()));
        fail(e.line, std::string("|length of a ") + kindName(v));
      }
      if (e.name == "string")
        return Value::string(str(v));
      std::string s = str(v);
      for (char &c : s)
        c = char(e.name == "lower" ? std::tolower(static_cast<unsigned char>(c))
                                   : std::toupper(static_cast<unsigned char>(c)));
      return Value::string(s);
    }
    case Expr::Test: {
      Value v = eval(*e.args[0]);
      bool r = false;
      const std::string &t = e.name;
      if (t == "defined")
        r = v.kind != Value::Undefined;
      else if (t == "undefined")
        r = v.kind == Value::Undefined;
      else if (t == "none")
        r = v.kind == Value::None;
      else if (t == "string")
        r = v.kind == Value::String;
      else if (t == "number")
        r = v.kind == Value::Int;
      else if (t == "true")
        r = v.kind == Value::Bool && v.b;
      else if (t == "false")
        r = v.kind == Value::Bool && !v.b;
      else if (t == "mapping")
        r = v.kind == Value::Map;
      else if (t == "sequence" || t == "iterable")
        r = v.kind == Value::List || v.kind == Value::String || v.kind == Value::Map;
      return Value::boolean(r != e.negate);
    }
    case Expr::Binary: {
      const std::string &op = e.name;
      if (op == "and") {
        Value a = eval(*e.args[0]);
        return truthy(a) ? eval(*e.args[1]) : a;
      }
      if (op == "or") {
        Value a = eval(*e.args[0]);
        return truthy(a) ? a : eval(*e.args[1]);
      }
      Value a = eval(*e.args[0]), b = eval(*e.args[1]);
      if (op == "==")
        return Value::boolean(equal(a, b));
      if (op == "!=")
        return Value::boolean(!equal(a, b));
      if (op == "~")
        return Value::string(str(a) + str(b));
      if (op == "in" || op == "not in") {
        bool found = false;
        if (b.kind == Value::String) {
          if (a.kind != Value::String)
            fail(e.line, std::string("'in <string>' needs a string, not a ") + kindName(a));
          found = b.s.find(a.s) != std::string::npos;
        } else if (b.kind == Value::List) {
          found = std::any_of(b.list->begin(), b.list->end(),
                              [&](const Value &x) { return equal(a, x); });
        } else if (b.kind == Value::Map || b.kind == Value::Namespace) {
          found = a.kind == Value::String && b.map->count(a.s);
        } else {
          fail(e.line, std::string("'in' needs a string, list or dict, not a ") + kindName(b));
        }
        return Value::boolean(found == (op == "in"));
      }
      if (op == "+") {
        if (a.kind == Value::String && b.kind == Value::String)
          return Value::string(a.s + b.s);
        if (a.kind == Value::Int && b.kind == Value::Int)
          return Value::integer(a.i + b.i);
        if (a.kind == Value::List && b.kind == Value::List) {
          std::vector<Value> items = *a.list;
          items.insert(items.end(), b.list->begin(), b.list->end());
          return Value::makeList(std::move(items));
        }
        fail(e.line, std::string("cannot add a ") + kindName(a) + " and a " + kindName(b) +
                         (a.kind == Value::Undefined ? " ('" + a.s + "' is undefined)"
                          : b.kind == Value::Undefined ? " ('" + b.s + "' is undefined)"
                                                       : ""));
      }
      if (op == "-") {
        if (a.kind == Value::Int && b.kind == Value::Int)
          return Value::integer(a.i - b.i);
        fail(e.line, std::string("cannot subtract a ") + kindName(b) + " from a " + kindName(a));
      }
      // < > <= >=
      int cmp = 0;
      if (a.kind == Value::Int && b.kind == Value::Int)
        cmp = a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
      else if (a.kind == Value::String && b.kind == Value::String)
        cmp = a.s.compare(b.s) < 0 ? -1 : a.s == b.s ? 0 : 1;
      else
        fail(e.line, std::string("cannot compare a ") + kindName(a) + " and a " + kindName(b));
      bool r = op == "<" ? cmp < 0 : op == ">" ? cmp > 0 : op == "<=" ? cmp <= 0 : cmp >= 0;
      return Value::boolean(r);
    }
    }
    return Value();
  }

  Scope scope_;
};

} // namespace

ChatTemplate::ChatTemplate() = default;
ChatTemplate::~ChatTemplate() = default;

Status ChatTemplate::parse(const std::string &source, std::unique_ptr<ChatTemplate> *out) {
  std::unique_ptr<ChatTemplate> t(new ChatTemplate());
  try {
    t->body_ = TemplateParser(splitSource(source)).parseAll();
  } catch (const Failure &f) {
    return Status::error("chat template, line %d: %s", f.line, f.message.c_str());
  }
  *out = std::move(t);
  return Status();
}

Status ChatTemplate::render(const std::vector<ChatMessage> &messages,
                            const ChatRenderOptions &options, std::string *out) const {
  Scope scope;
  scope.frames.emplace_back();
  Dict &globals = scope.frames.back();
  std::vector<Value> list;
  for (const ChatMessage &m : messages) {
    Value v = Value::makeMap();
    (*v.map)["role"] = Value::string(m.role);
    (*v.map)["content"] = Value::string(m.content);
    list.push_back(v);
  }
  globals["messages"] = Value::makeList(std::move(list));
  globals["bos_token"] = Value::string(options.bosToken);
  globals["eos_token"] = Value::string(options.eosToken);
  globals["add_generation_prompt"] = Value::boolean(options.addGenerationPrompt);
  for (const auto &[name, value] : options.flags)
    globals[name] = Value::boolean(value);
  scope.frames.emplace_back(); // the template's own top-level sets
  std::string text;
  try {
    Renderer(std::move(scope)).run(body_, text);
  } catch (const Failure &f) {
    return Status::error("chat template, line %d: %s", f.line, f.message.c_str());
  }
  *out = std::move(text);
  return Status();
}

} // namespace moec
