#include "steps/common/gif_writer.hpp"

#include <fcntl.h>
#include <gif_lib.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <system_error>
#include <vector>

#include "tessera/errors.hpp"

namespace tessera::gif {
namespace {

constexpr int kGreys = 160;                      // palette entries 0..159
constexpr int kRed = 4, kGreen = 6, kBlue = 4;   // colour cube, entries 160..255
static_assert(kGreys + kRed * kGreen * kBlue == 256);
constexpr int kChromaForGrey = 16;  // max − min channel at or below which a colour counts as grey

int cube_level(std::uint8_t v, int levels) { return static_cast<int>(std::lround(v * (levels - 1) / 255.0)); }
std::uint8_t cube_value(int level, int levels) { return static_cast<std::uint8_t>(std::lround(level * 255.0 / (levels - 1))); }

std::string gif_error(int error) {
  const char* text = GifErrorString(error);
  return text ? text : ("giflib error " + std::to_string(error));
}

}  // namespace

std::uint8_t palette_index(std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  const int hi = std::max({r, g, b}), lo = std::min({r, g, b});
  if (hi - lo <= kChromaForGrey) {
    const double luma = (r + g + b) / 3.0;
    return static_cast<std::uint8_t>(std::lround(luma * (kGreys - 1) / 255.0));
  }
  const int index = kGreys + (cube_level(r, kRed) * kGreen + cube_level(g, kGreen)) * kBlue + cube_level(b, kBlue);
  return static_cast<std::uint8_t>(index);
}

std::array<std::uint8_t, 3> palette_colour(std::uint8_t index) {
  if (index < kGreys) {
    const auto v = static_cast<std::uint8_t>(std::lround(index * 255.0 / (kGreys - 1)));
    return {v, v, v};
  }
  const int k = index - kGreys;
  return {cube_value(k / (kGreen * kBlue), kRed), cube_value((k / kBlue) % kGreen, kGreen), cube_value(k % kBlue, kBlue)};
}

AnimatedGif::AnimatedGif(const std::filesystem::path& path, int width, int height, int delay_cs)
    : path_(path), partial_(path.string() + ".partial"), width_(width), height_(height), delay_cs_(delay_cs) {
  if (width <= 0 || height <= 0 || width > 65535 || height > 65535)
    throw InternalError(path.string() + ": GIF size " + std::to_string(width) + " x " + std::to_string(height) +
                        " is outside 1–65535");
  if (delay_cs < 0 || delay_cs > 65535) throw InternalError(path.string() + ": GIF frame delay out of range");
  // Opened here rather than by EGifOpenFileName, which makes the file readable by its owner
  // only: the GIF gets the same permissions (umask) as every other output.
  const int fd = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) throw IoError(path.string() + ": cannot create the GIF: " + std::generic_category().message(errno));
  int error = 0;
  file_ = EGifOpenFileHandle(fd, &error);
  if (!file_) {
    ::close(fd);
    std::error_code ec;
    std::filesystem::remove(partial_, ec);
    throw IoError(path.string() + ": cannot create the GIF: " + gif_error(error));
  }
  EGifSetGifVersion(file_, true);  // GIF89a: needed for the animation extensions
  std::vector<GifColorType> colours(256);
  for (int i = 0; i < 256; ++i) {
    const auto c = palette_colour(static_cast<std::uint8_t>(i));
    colours[static_cast<std::size_t>(i)] = {c[0], c[1], c[2]};
  }
  ColorMapObject* map = GifMakeMapObject(256, colours.data());
  if (!map) fail("cannot make the colour map", E_GIF_ERR_NOT_ENOUGH_MEM);
  const int status = EGifPutScreenDesc(file_, width, height, 8, 0, map);  // copies the map
  GifFreeMapObject(map);
  if (status == GIF_ERROR) fail("cannot write the screen descriptor", file_->Error);
  // Loop forever: application extension NETSCAPE2.0, sub-block {1, loop count 0 (little endian)}.
  static const char kNetscape[] = "NETSCAPE2.0";
  const GifByteType loop[3] = {1, 0, 0};
  if (EGifPutExtensionLeader(file_, APPLICATION_EXT_FUNC_CODE) == GIF_ERROR ||
      EGifPutExtensionBlock(file_, 11, kNetscape) == GIF_ERROR || EGifPutExtensionBlock(file_, 3, loop) == GIF_ERROR ||
      EGifPutExtensionTrailer(file_) == GIF_ERROR)
    fail("cannot write the loop extension", file_->Error);
}

AnimatedGif::~AnimatedGif() {
  if (!file_) return;
  int error = 0;
  EGifCloseFile(file_, &error);
  file_ = nullptr;
  std::error_code ec;
  std::filesystem::remove(partial_, ec);
}

void AnimatedGif::fail(const std::string& what, int error) {
  if (file_) {
    int ignored = 0;
    EGifCloseFile(file_, &ignored);
    file_ = nullptr;
  }
  std::error_code ec;
  std::filesystem::remove(partial_, ec);
  throw IoError(path_.string() + ": " + what + ": " + gif_error(error));
}

void AnimatedGif::add_frame(std::span<const std::uint8_t> rgb) {
  if (!file_) throw InternalError(path_.string() + ": GIF frame added after close");
  const auto w = static_cast<std::size_t>(width_), h = static_cast<std::size_t>(height_);
  if (rgb.size() != w * h * 3)
    throw InternalError(path_.string() + ": GIF frame has " + std::to_string(rgb.size()) + " bytes, not " +
                        std::to_string(w * h * 3));
  GraphicsControlBlock gcb{};
  gcb.DisposalMode = DISPOSE_DO_NOT;
  gcb.UserInputFlag = false;
  gcb.DelayTime = delay_cs_;
  gcb.TransparentColor = NO_TRANSPARENT_COLOR;
  GifByteType extension[4];
  const std::size_t length = EGifGCBToExtension(&gcb, extension);
  if (EGifPutExtension(file_, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(length), extension) == GIF_ERROR)
    fail("cannot write a frame's graphics control extension", file_->Error);
  if (EGifPutImageDesc(file_, 0, 0, width_, height_, false, nullptr) == GIF_ERROR)
    fail("cannot write a frame's image descriptor", file_->Error);
  std::vector<GifPixelType> line(w);
  for (std::size_t y = 0; y < h; ++y) {
    const std::uint8_t* p = rgb.data() + y * w * 3;
    for (std::size_t x = 0; x < w; ++x, p += 3) line[x] = palette_index(p[0], p[1], p[2]);
    if (EGifPutLine(file_, line.data(), width_) == GIF_ERROR) fail("cannot write a frame's pixels", file_->Error);
  }
  ++frames_;
}

void AnimatedGif::close() {
  if (!file_) throw InternalError(path_.string() + ": GIF closed twice");
  int error = 0;
  const int status = EGifCloseFile(file_, &error);
  file_ = nullptr;
  std::error_code ec;
  if (status == GIF_ERROR) {
    std::filesystem::remove(partial_, ec);
    throw IoError(path_.string() + ": cannot finish the GIF: " + gif_error(error));
  }
  std::filesystem::rename(partial_, path_, ec);
  if (ec) throw IoError(path_.string() + ": cannot rename from " + partial_.string() + ": " + ec.message());
}

GifSummary inspect_gif(const std::filesystem::path& path) {
  int error = 0;
  GifFileType* file = DGifOpenFileName(path.c_str(), &error);
  if (!file) throw IoError(path.string() + ": cannot open the GIF: " + gif_error(error));
  struct Closer {
    GifFileType* f;
    ~Closer() {
      int ignored = 0;
      DGifCloseFile(f, &ignored);
    }
  } closer{file};
  if (DGifSlurp(file) == GIF_ERROR) throw IoError(path.string() + ": cannot read the GIF: " + gif_error(file->Error));
  GifSummary s;
  s.width = file->SWidth;
  s.height = file->SHeight;
  s.frames = static_cast<std::size_t>(file->ImageCount);
  GraphicsControlBlock gcb{};
  if (file->ImageCount > 0 && DGifSavedExtensionToGCB(file, 0, &gcb) == GIF_OK) s.delay_cs = gcb.DelayTime;
  auto scan = [&](const ExtensionBlock* blocks, int count) {
    for (int i = 0; i + 1 < count; ++i)
      if (blocks[i].Function == APPLICATION_EXT_FUNC_CODE && blocks[i].ByteCount == 11 &&
          std::memcmp(blocks[i].Bytes, "NETSCAPE2.0", 11) == 0 && blocks[i + 1].ByteCount == 3 &&
          blocks[i + 1].Bytes[0] == 1 && blocks[i + 1].Bytes[1] == 0 && blocks[i + 1].Bytes[2] == 0)
        s.loops = true;
  };
  scan(file->ExtensionBlocks, file->ExtensionBlockCount);
  if (file->ImageCount > 0) scan(file->SavedImages[0].ExtensionBlocks, file->SavedImages[0].ExtensionBlockCount);
  return s;
}

}  // namespace tessera::gif
