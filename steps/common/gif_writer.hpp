#pragma once
/// Animated GIF files with giflib: RGB frames are mapped onto one fixed 256-colour palette
/// (a 160-level grey ramp and a 4 × 6 × 4 colour cube), so grey-scale images keep their
/// tones and plot colours stay stable from frame to frame; every frame is shown for the
/// same delay and the animation loops forever (NETSCAPE2.0 application extension).
///
/// ```cpp
/// gif::AnimatedGif gif("plots/quicklookup.gif", 800, 480, 10);  // 0.1 s per frame
/// for (...) gif.add_frame(plot::render_rgb(figure).rgb);
/// gif.close();
/// ```
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

struct GifFileType;

namespace tessera::gif {

/// Index of the palette colour that stands for (r, g, b): near-greys go to the grey ramp,
/// other colours to the nearest colour-cube entry.
std::uint8_t palette_index(std::uint8_t r, std::uint8_t g, std::uint8_t b);
/// The colour of palette entry `index`.
std::array<std::uint8_t, 3> palette_colour(std::uint8_t index);

/// Writes frames one at a time; the file appears under its name only after close().
class AnimatedGif {
 public:
  /// `delay_cs`: how long each frame is shown, in hundredths of a second (≥ 2: browsers
  /// slow down shorter delays).
  AnimatedGif(const std::filesystem::path& path, int width, int height, int delay_cs);
  ~AnimatedGif();  ///< abandons an unclosed file (removes the partial file)
  AnimatedGif(const AnimatedGif&) = delete;
  AnimatedGif& operator=(const AnimatedGif&) = delete;

  /// Appends a frame of width × height × 3 bytes (RGB, row-major from the top left).
  void add_frame(std::span<const std::uint8_t> rgb);
  /// Finishes the file; throws IoError naming it on failure.
  void close();
  std::size_t frames() const { return frames_; }

 private:
  [[noreturn]] void fail(const std::string& what, int error);

  std::filesystem::path path_, partial_;
  int width_ = 0, height_ = 0, delay_cs_ = 10;
  GifFileType* file_ = nullptr;
  std::size_t frames_ = 0;
};

/// What a GIF file holds (for checks and tests), read with giflib's DGifSlurp.
struct GifSummary {
  int width = 0, height = 0;
  std::size_t frames = 0;
  int delay_cs = 0;      ///< of the first frame, from its graphics control extension
  bool loops = false;    ///< has the NETSCAPE2.0 extension with loop count 0 (forever)
};
GifSummary inspect_gif(const std::filesystem::path& path);

}  // namespace tessera::gif
