/* tokenizer.c: SentencePiece BPE and byte-level BPE over a GGUF vocabulary, following
 * llama.cpp's llm_tokenizer_spm / llm_tokenizer_bpe (see tokenizer.h for the contract).
 * The vocabulary is copied into one arena and indexed by an open-addressing hash map;
 * merging uses a binary heap, so a text of n bytes costs O(n log n). */
#define _GNU_SOURCE /* memmem */
#include "tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Unicode classes for the byte-level pre-tokenizers ----
 * Letter (L*) and number (N*) ranges generated from Python 3.11's unicodedata (Unicode
 * 14.0.0) with:
 *   cat = unicodedata.category(chr(cp)); ranges of cat[0] == 'L' and of cat[0] == 'N'
 * Whitespace is llama.cpp's set (unicode_set_whitespace), not Python's isspace. */
static const uint32_t uni_letter[][2] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xAA, 0xAA}, {0xB5, 0xB5}, {0xBA, 0xBA}, {0xC0, 0xD6},
    {0xD8, 0xF6}, {0xF8, 0x2C1}, {0x2C6, 0x2D1}, {0x2E0, 0x2E4}, {0x2EC, 0x2EC}, {0x2EE, 0x2EE},
    {0x370, 0x374}, {0x376, 0x377}, {0x37A, 0x37D}, {0x37F, 0x37F}, {0x386, 0x386},
    {0x388, 0x38A}, {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481},
    {0x48A, 0x52F}, {0x531, 0x556}, {0x559, 0x559}, {0x560, 0x588}, {0x5D0, 0x5EA},
    {0x5EF, 0x5F2}, {0x620, 0x64A}, {0x66E, 0x66F}, {0x671, 0x6D3}, {0x6D5, 0x6D5},
    {0x6E5, 0x6E6}, {0x6EE, 0x6EF}, {0x6FA, 0x6FC}, {0x6FF, 0x6FF}, {0x710, 0x710},
    {0x712, 0x72F}, {0x74D, 0x7A5}, {0x7B1, 0x7B1}, {0x7CA, 0x7EA}, {0x7F4, 0x7F5},
    {0x7FA, 0x7FA}, {0x800, 0x815}, {0x81A, 0x81A}, {0x824, 0x824}, {0x828, 0x828},
    {0x840, 0x858}, {0x860, 0x86A}, {0x870, 0x887}, {0x889, 0x88E}, {0x8A0, 0x8C9},
    {0x904, 0x939}, {0x93D, 0x93D}, {0x950, 0x950}, {0x958, 0x961}, {0x971, 0x980},
    {0x985, 0x98C}, {0x98F, 0x990}, {0x993, 0x9A8}, {0x9AA, 0x9B0}, {0x9B2, 0x9B2},
    {0x9B6, 0x9B9}, {0x9BD, 0x9BD}, {0x9CE, 0x9CE}, {0x9DC, 0x9DD}, {0x9DF, 0x9E1},
    {0x9F0, 0x9F1}, {0x9FC, 0x9FC}, {0xA05, 0xA0A}, {0xA0F, 0xA10}, {0xA13, 0xA28},
    {0xA2A, 0xA30}, {0xA32, 0xA33}, {0xA35, 0xA36}, {0xA38, 0xA39}, {0xA59, 0xA5C},
    {0xA5E, 0xA5E}, {0xA72, 0xA74}, {0xA85, 0xA8D}, {0xA8F, 0xA91}, {0xA93, 0xAA8},
    {0xAAA, 0xAB0}, {0xAB2, 0xAB3}, {0xAB5, 0xAB9}, {0xABD, 0xABD}, {0xAD0, 0xAD0},
    {0xAE0, 0xAE1}, {0xAF9, 0xAF9}, {0xB05, 0xB0C}, {0xB0F, 0xB10}, {0xB13, 0xB28},
    {0xB2A, 0xB30}, {0xB32, 0xB33}, {0xB35, 0xB39}, {0xB3D, 0xB3D}, {0xB5C, 0xB5D},
    {0xB5F, 0xB61}, {0xB71, 0xB71}, {0xB83, 0xB83}, {0xB85, 0xB8A}, {0xB8E, 0xB90},
    {0xB92, 0xB95}, {0xB99, 0xB9A}, {0xB9C, 0xB9C}, {0xB9E, 0xB9F}, {0xBA3, 0xBA4},
    {0xBA8, 0xBAA}, {0xBAE, 0xBB9}, {0xBD0, 0xBD0}, {0xC05, 0xC0C}, {0xC0E, 0xC10},
    {0xC12, 0xC28}, {0xC2A, 0xC39}, {0xC3D, 0xC3D}, {0xC58, 0xC5A}, {0xC5D, 0xC5D},
    {0xC60, 0xC61}, {0xC80, 0xC80}, {0xC85, 0xC8C}, {0xC8E, 0xC90}, {0xC92, 0xCA8},
    {0xCAA, 0xCB3}, {0xCB5, 0xCB9}, {0xCBD, 0xCBD}, {0xCDD, 0xCDE}, {0xCE0, 0xCE1},
    {0xCF1, 0xCF2}, {0xD04, 0xD0C}, {0xD0E, 0xD10}, {0xD12, 0xD3A}, {0xD3D, 0xD3D},
    {0xD4E, 0xD4E}, {0xD54, 0xD56}, {0xD5F, 0xD61}, {0xD7A, 0xD7F}, {0xD85, 0xD96},
    {0xD9A, 0xDB1}, {0xDB3, 0xDBB}, {0xDBD, 0xDBD}, {0xDC0, 0xDC6}, {0xE01, 0xE30},
    {0xE32, 0xE33}, {0xE40, 0xE46}, {0xE81, 0xE82}, {0xE84, 0xE84}, {0xE86, 0xE8A},
    {0xE8C, 0xEA3}, {0xEA5, 0xEA5}, {0xEA7, 0xEB0}, {0xEB2, 0xEB3}, {0xEBD, 0xEBD},
    {0xEC0, 0xEC4}, {0xEC6, 0xEC6}, {0xEDC, 0xEDF}, {0xF00, 0xF00}, {0xF40, 0xF47},
    {0xF49, 0xF6C}, {0xF88, 0xF8C}, {0x1000, 0x102A}, {0x103F, 0x103F}, {0x1050, 0x1055},
    {0x105A, 0x105D}, {0x1061, 0x1061}, {0x1065, 0x1066}, {0x106E, 0x1070}, {0x1075, 0x1081},
    {0x108E, 0x108E}, {0x10A0, 0x10C5}, {0x10C7, 0x10C7}, {0x10CD, 0x10CD}, {0x10D0, 0x10FA},
    {0x10FC, 0x1248}, {0x124A, 0x124D}, {0x1250, 0x1256}, {0x1258, 0x1258}, {0x125A, 0x125D},
    {0x1260, 0x1288}, {0x128A, 0x128D}, {0x1290, 0x12B0}, {0x12B2, 0x12B5}, {0x12B8, 0x12BE},
    {0x12C0, 0x12C0}, {0x12C2, 0x12C5}, {0x12C8, 0x12D6}, {0x12D8, 0x1310}, {0x1312, 0x1315},
    {0x1318, 0x135A}, {0x1380, 0x138F}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1401, 0x166C},
    {0x166F, 0x167F}, {0x1681, 0x169A}, {0x16A0, 0x16EA}, {0x16F1, 0x16F8}, {0x1700, 0x1711},
    {0x171F, 0x1731}, {0x1740, 0x1751}, {0x1760, 0x176C}, {0x176E, 0x1770}, {0x1780, 0x17B3},
    {0x17D7, 0x17D7}, {0x17DC, 0x17DC}, {0x1820, 0x1878}, {0x1880, 0x1884}, {0x1887, 0x18A8},
    {0x18AA, 0x18AA}, {0x18B0, 0x18F5}, {0x1900, 0x191E}, {0x1950, 0x196D}, {0x1970, 0x1974},
    {0x1980, 0x19AB}, {0x19B0, 0x19C9}, {0x1A00, 0x1A16}, {0x1A20, 0x1A54}, {0x1AA7, 0x1AA7},
    {0x1B05, 0x1B33}, {0x1B45, 0x1B4C}, {0x1B83, 0x1BA0}, {0x1BAE, 0x1BAF}, {0x1BBA, 0x1BE5},
    {0x1C00, 0x1C23}, {0x1C4D, 0x1C4F}, {0x1C5A, 0x1C7D}, {0x1C80, 0x1C88}, {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF}, {0x1CE9, 0x1CEC}, {0x1CEE, 0x1CF3}, {0x1CF5, 0x1CF6}, {0x1CFA, 0x1CFA},
    {0x1D00, 0x1DBF}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D},
    {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D},
    {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC},
    {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC},
    {0x2071, 0x2071}, {0x207F, 0x207F}, {0x2090, 0x209C}, {0x2102, 0x2102}, {0x2107, 0x2107},
    {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
    {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149},
    {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3},
    {0x2D00, 0x2D25}, {0x2D27, 0x2D27}, {0x2D2D, 0x2D2D}, {0x2D30, 0x2D67}, {0x2D6F, 0x2D6F},
    {0x2D80, 0x2D96}, {0x2DA0, 0x2DA6}, {0x2DA8, 0x2DAE}, {0x2DB0, 0x2DB6}, {0x2DB8, 0x2DBE},
    {0x2DC0, 0x2DC6}, {0x2DC8, 0x2DCE}, {0x2DD0, 0x2DD6}, {0x2DD8, 0x2DDE}, {0x2E2F, 0x2E2F},
    {0x3005, 0x3006}, {0x3031, 0x3035}, {0x303B, 0x303C}, {0x3041, 0x3096}, {0x309D, 0x309F},
    {0x30A1, 0x30FA}, {0x30FC, 0x30FF}, {0x3105, 0x312F}, {0x3131, 0x318E}, {0x31A0, 0x31BF},
    {0x31F0, 0x31FF}, {0x3400, 0x4DBF}, {0x4E00, 0xA48C}, {0xA4D0, 0xA4FD}, {0xA500, 0xA60C},
    {0xA610, 0xA61F}, {0xA62A, 0xA62B}, {0xA640, 0xA66E}, {0xA67F, 0xA69D}, {0xA6A0, 0xA6E5},
    {0xA717, 0xA71F}, {0xA722, 0xA788}, {0xA78B, 0xA7CA}, {0xA7D0, 0xA7D1}, {0xA7D3, 0xA7D3},
    {0xA7D5, 0xA7D9}, {0xA7F2, 0xA801}, {0xA803, 0xA805}, {0xA807, 0xA80A}, {0xA80C, 0xA822},
    {0xA840, 0xA873}, {0xA882, 0xA8B3}, {0xA8F2, 0xA8F7}, {0xA8FB, 0xA8FB}, {0xA8FD, 0xA8FE},
    {0xA90A, 0xA925}, {0xA930, 0xA946}, {0xA960, 0xA97C}, {0xA984, 0xA9B2}, {0xA9CF, 0xA9CF},
    {0xA9E0, 0xA9E4}, {0xA9E6, 0xA9EF}, {0xA9FA, 0xA9FE}, {0xAA00, 0xAA28}, {0xAA40, 0xAA42},
    {0xAA44, 0xAA4B}, {0xAA60, 0xAA76}, {0xAA7A, 0xAA7A}, {0xAA7E, 0xAAAF}, {0xAAB1, 0xAAB1},
    {0xAAB5, 0xAAB6}, {0xAAB9, 0xAABD}, {0xAAC0, 0xAAC0}, {0xAAC2, 0xAAC2}, {0xAADB, 0xAADD},
    {0xAAE0, 0xAAEA}, {0xAAF2, 0xAAF4}, {0xAB01, 0xAB06}, {0xAB09, 0xAB0E}, {0xAB11, 0xAB16},
    {0xAB20, 0xAB26}, {0xAB28, 0xAB2E}, {0xAB30, 0xAB5A}, {0xAB5C, 0xAB69}, {0xAB70, 0xABE2},
    {0xAC00, 0xD7A3}, {0xD7B0, 0xD7C6}, {0xD7CB, 0xD7FB}, {0xF900, 0xFA6D}, {0xFA70, 0xFAD9},
    {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFB1D, 0xFB1D}, {0xFB1F, 0xFB28}, {0xFB2A, 0xFB36},
    {0xFB38, 0xFB3C}, {0xFB3E, 0xFB3E}, {0xFB40, 0xFB41}, {0xFB43, 0xFB44}, {0xFB46, 0xFBB1},
    {0xFBD3, 0xFD3D}, {0xFD50, 0xFD8F}, {0xFD92, 0xFDC7}, {0xFDF0, 0xFDFB}, {0xFE70, 0xFE74},
    {0xFE76, 0xFEFC}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0xFF66, 0xFFBE}, {0xFFC2, 0xFFC7},
    {0xFFCA, 0xFFCF}, {0xFFD2, 0xFFD7}, {0xFFDA, 0xFFDC}, {0x10000, 0x1000B},
    {0x1000D, 0x10026}, {0x10028, 0x1003A}, {0x1003C, 0x1003D}, {0x1003F, 0x1004D},
    {0x10050, 0x1005D}, {0x10080, 0x100FA}, {0x10280, 0x1029C}, {0x102A0, 0x102D0},
    {0x10300, 0x1031F}, {0x1032D, 0x10340}, {0x10342, 0x10349}, {0x10350, 0x10375},
    {0x10380, 0x1039D}, {0x103A0, 0x103C3}, {0x103C8, 0x103CF}, {0x10400, 0x1049D},
    {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10500, 0x10527}, {0x10530, 0x10563},
    {0x10570, 0x1057A}, {0x1057C, 0x1058A}, {0x1058C, 0x10592}, {0x10594, 0x10595},
    {0x10597, 0x105A1}, {0x105A3, 0x105B1}, {0x105B3, 0x105B9}, {0x105BB, 0x105BC},
    {0x10600, 0x10736}, {0x10740, 0x10755}, {0x10760, 0x10767}, {0x10780, 0x10785},
    {0x10787, 0x107B0}, {0x107B2, 0x107BA}, {0x10800, 0x10805}, {0x10808, 0x10808},
    {0x1080A, 0x10835}, {0x10837, 0x10838}, {0x1083C, 0x1083C}, {0x1083F, 0x10855},
    {0x10860, 0x10876}, {0x10880, 0x1089E}, {0x108E0, 0x108F2}, {0x108F4, 0x108F5},
    {0x10900, 0x10915}, {0x10920, 0x10939}, {0x10980, 0x109B7}, {0x109BE, 0x109BF},
    {0x10A00, 0x10A00}, {0x10A10, 0x10A13}, {0x10A15, 0x10A17}, {0x10A19, 0x10A35},
    {0x10A60, 0x10A7C}, {0x10A80, 0x10A9C}, {0x10AC0, 0x10AC7}, {0x10AC9, 0x10AE4},
    {0x10B00, 0x10B35}, {0x10B40, 0x10B55}, {0x10B60, 0x10B72}, {0x10B80, 0x10B91},
    {0x10C00, 0x10C48}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x10D00, 0x10D23},
    {0x10E80, 0x10EA9}, {0x10EB0, 0x10EB1}, {0x10F00, 0x10F1C}, {0x10F27, 0x10F27},
    {0x10F30, 0x10F45}, {0x10F70, 0x10F81}, {0x10FB0, 0x10FC4}, {0x10FE0, 0x10FF6},
    {0x11003, 0x11037}, {0x11071, 0x11072}, {0x11075, 0x11075}, {0x11083, 0x110AF},
    {0x110D0, 0x110E8}, {0x11103, 0x11126}, {0x11144, 0x11144}, {0x11147, 0x11147},
    {0x11150, 0x11172}, {0x11176, 0x11176}, {0x11183, 0x111B2}, {0x111C1, 0x111C4},
    {0x111DA, 0x111DA}, {0x111DC, 0x111DC}, {0x11200, 0x11211}, {0x11213, 0x1122B},
    {0x11280, 0x11286}, {0x11288, 0x11288}, {0x1128A, 0x1128D}, {0x1128F, 0x1129D},
    {0x1129F, 0x112A8}, {0x112B0, 0x112DE}, {0x11305, 0x1130C}, {0x1130F, 0x11310},
    {0x11313, 0x11328}, {0x1132A, 0x11330}, {0x11332, 0x11333}, {0x11335, 0x11339},
    {0x1133D, 0x1133D}, {0x11350, 0x11350}, {0x1135D, 0x11361}, {0x11400, 0x11434},
    {0x11447, 0x1144A}, {0x1145F, 0x11461}, {0x11480, 0x114AF}, {0x114C4, 0x114C5},
    {0x114C7, 0x114C7}, {0x11580, 0x115AE}, {0x115D8, 0x115DB}, {0x11600, 0x1162F},
    {0x11644, 0x11644}, {0x11680, 0x116AA}, {0x116B8, 0x116B8}, {0x11700, 0x1171A},
    {0x11740, 0x11746}, {0x11800, 0x1182B}, {0x118A0, 0x118DF}, {0x118FF, 0x11906},
    {0x11909, 0x11909}, {0x1190C, 0x11913}, {0x11915, 0x11916}, {0x11918, 0x1192F},
    {0x1193F, 0x1193F}, {0x11941, 0x11941}, {0x119A0, 0x119A7}, {0x119AA, 0x119D0},
    {0x119E1, 0x119E1}, {0x119E3, 0x119E3}, {0x11A00, 0x11A00}, {0x11A0B, 0x11A32},
    {0x11A3A, 0x11A3A}, {0x11A50, 0x11A50}, {0x11A5C, 0x11A89}, {0x11A9D, 0x11A9D},
    {0x11AB0, 0x11AF8}, {0x11C00, 0x11C08}, {0x11C0A, 0x11C2E}, {0x11C40, 0x11C40},
    {0x11C72, 0x11C8F}, {0x11D00, 0x11D06}, {0x11D08, 0x11D09}, {0x11D0B, 0x11D30},
    {0x11D46, 0x11D46}, {0x11D60, 0x11D65}, {0x11D67, 0x11D68}, {0x11D6A, 0x11D89},
    {0x11D98, 0x11D98}, {0x11EE0, 0x11EF2}, {0x11FB0, 0x11FB0}, {0x12000, 0x12399},
    {0x12480, 0x12543}, {0x12F90, 0x12FF0}, {0x13000, 0x1342E}, {0x14400, 0x14646},
    {0x16800, 0x16A38}, {0x16A40, 0x16A5E}, {0x16A70, 0x16ABE}, {0x16AD0, 0x16AED},
    {0x16B00, 0x16B2F}, {0x16B40, 0x16B43}, {0x16B63, 0x16B77}, {0x16B7D, 0x16B8F},
    {0x16E40, 0x16E7F}, {0x16F00, 0x16F4A}, {0x16F50, 0x16F50}, {0x16F93, 0x16F9F},
    {0x16FE0, 0x16FE1}, {0x16FE3, 0x16FE3}, {0x17000, 0x187F7}, {0x18800, 0x18CD5},
    {0x18D00, 0x18D08}, {0x1AFF0, 0x1AFF3}, {0x1AFF5, 0x1AFFB}, {0x1AFFD, 0x1AFFE},
    {0x1B000, 0x1B122}, {0x1B150, 0x1B152}, {0x1B164, 0x1B167}, {0x1B170, 0x1B2FB},
    {0x1BC00, 0x1BC6A}, {0x1BC70, 0x1BC7C}, {0x1BC80, 0x1BC88}, {0x1BC90, 0x1BC99},
    {0x1D400, 0x1D454}, {0x1D456, 0x1D49C}, {0x1D49E, 0x1D49F}, {0x1D4A2, 0x1D4A2},
    {0x1D4A5, 0x1D4A6}, {0x1D4A9, 0x1D4AC}, {0x1D4AE, 0x1D4B9}, {0x1D4BB, 0x1D4BB},
    {0x1D4BD, 0x1D4C3}, {0x1D4C5, 0x1D505}, {0x1D507, 0x1D50A}, {0x1D50D, 0x1D514},
    {0x1D516, 0x1D51C}, {0x1D51E, 0x1D539}, {0x1D53B, 0x1D53E}, {0x1D540, 0x1D544},
    {0x1D546, 0x1D546}, {0x1D54A, 0x1D550}, {0x1D552, 0x1D6A5}, {0x1D6A8, 0x1D6C0},
    {0x1D6C2, 0x1D6DA}, {0x1D6DC, 0x1D6FA}, {0x1D6FC, 0x1D714}, {0x1D716, 0x1D734},
    {0x1D736, 0x1D74E}, {0x1D750, 0x1D76E}, {0x1D770, 0x1D788}, {0x1D78A, 0x1D7A8},
    {0x1D7AA, 0x1D7C2}, {0x1D7C4, 0x1D7CB}, {0x1DF00, 0x1DF1E}, {0x1E100, 0x1E12C},
    {0x1E137, 0x1E13D}, {0x1E14E, 0x1E14E}, {0x1E290, 0x1E2AD}, {0x1E2C0, 0x1E2EB},
    {0x1E7E0, 0x1E7E6}, {0x1E7E8, 0x1E7EB}, {0x1E7ED, 0x1E7EE}, {0x1E7F0, 0x1E7FE},
    {0x1E800, 0x1E8C4}, {0x1E900, 0x1E943}, {0x1E94B, 0x1E94B}, {0x1EE00, 0x1EE03},
    {0x1EE05, 0x1EE1F}, {0x1EE21, 0x1EE22}, {0x1EE24, 0x1EE24}, {0x1EE27, 0x1EE27},
    {0x1EE29, 0x1EE32}, {0x1EE34, 0x1EE37}, {0x1EE39, 0x1EE39}, {0x1EE3B, 0x1EE3B},
    {0x1EE42, 0x1EE42}, {0x1EE47, 0x1EE47}, {0x1EE49, 0x1EE49}, {0x1EE4B, 0x1EE4B},
    {0x1EE4D, 0x1EE4F}, {0x1EE51, 0x1EE52}, {0x1EE54, 0x1EE54}, {0x1EE57, 0x1EE57},
    {0x1EE59, 0x1EE59}, {0x1EE5B, 0x1EE5B}, {0x1EE5D, 0x1EE5D}, {0x1EE5F, 0x1EE5F},
    {0x1EE61, 0x1EE62}, {0x1EE64, 0x1EE64}, {0x1EE67, 0x1EE6A}, {0x1EE6C, 0x1EE72},
    {0x1EE74, 0x1EE77}, {0x1EE79, 0x1EE7C}, {0x1EE7E, 0x1EE7E}, {0x1EE80, 0x1EE89},
    {0x1EE8B, 0x1EE9B}, {0x1EEA1, 0x1EEA3}, {0x1EEA5, 0x1EEA9}, {0x1EEAB, 0x1EEBB},
    {0x20000, 0x2A6DF}, {0x2A700, 0x2B738}, {0x2B740, 0x2B81D}, {0x2B820, 0x2CEA1},
    {0x2CEB0, 0x2EBE0}, {0x2F800, 0x2FA1D}, {0x30000, 0x3134A},
};
static const uint32_t uni_number[][2] = {
    {0x30, 0x39}, {0xB2, 0xB3}, {0xB9, 0xB9}, {0xBC, 0xBE}, {0x660, 0x669}, {0x6F0, 0x6F9},
    {0x7C0, 0x7C9}, {0x966, 0x96F}, {0x9E6, 0x9EF}, {0x9F4, 0x9F9}, {0xA66, 0xA6F},
    {0xAE6, 0xAEF}, {0xB66, 0xB6F}, {0xB72, 0xB77}, {0xBE6, 0xBF2}, {0xC66, 0xC6F},
    {0xC78, 0xC7E}, {0xCE6, 0xCEF}, {0xD58, 0xD5E}, {0xD66, 0xD78}, {0xDE6, 0xDEF},
    {0xE50, 0xE59}, {0xED0, 0xED9}, {0xF20, 0xF33}, {0x1040, 0x1049}, {0x1090, 0x1099},
    {0x1369, 0x137C}, {0x16EE, 0x16F0}, {0x17E0, 0x17E9}, {0x17F0, 0x17F9}, {0x1810, 0x1819},
    {0x1946, 0x194F}, {0x19D0, 0x19DA}, {0x1A80, 0x1A89}, {0x1A90, 0x1A99}, {0x1B50, 0x1B59},
    {0x1BB0, 0x1BB9}, {0x1C40, 0x1C49}, {0x1C50, 0x1C59}, {0x2070, 0x2070}, {0x2074, 0x2079},
    {0x2080, 0x2089}, {0x2150, 0x2182}, {0x2185, 0x2189}, {0x2460, 0x249B}, {0x24EA, 0x24FF},
    {0x2776, 0x2793}, {0x2CFD, 0x2CFD}, {0x3007, 0x3007}, {0x3021, 0x3029}, {0x3038, 0x303A},
    {0x3192, 0x3195}, {0x3220, 0x3229}, {0x3248, 0x324F}, {0x3251, 0x325F}, {0x3280, 0x3289},
    {0x32B1, 0x32BF}, {0xA620, 0xA629}, {0xA6E6, 0xA6EF}, {0xA830, 0xA835}, {0xA8D0, 0xA8D9},
    {0xA900, 0xA909}, {0xA9D0, 0xA9D9}, {0xA9F0, 0xA9F9}, {0xAA50, 0xAA59}, {0xABF0, 0xABF9},
    {0xFF10, 0xFF19}, {0x10107, 0x10133}, {0x10140, 0x10178}, {0x1018A, 0x1018B},
    {0x102E1, 0x102FB}, {0x10320, 0x10323}, {0x10341, 0x10341}, {0x1034A, 0x1034A},
    {0x103D1, 0x103D5}, {0x104A0, 0x104A9}, {0x10858, 0x1085F}, {0x10879, 0x1087F},
    {0x108A7, 0x108AF}, {0x108FB, 0x108FF}, {0x10916, 0x1091B}, {0x109BC, 0x109BD},
    {0x109C0, 0x109CF}, {0x109D2, 0x109FF}, {0x10A40, 0x10A48}, {0x10A7D, 0x10A7E},
    {0x10A9D, 0x10A9F}, {0x10AEB, 0x10AEF}, {0x10B58, 0x10B5F}, {0x10B78, 0x10B7F},
    {0x10BA9, 0x10BAF}, {0x10CFA, 0x10CFF}, {0x10D30, 0x10D39}, {0x10E60, 0x10E7E},
    {0x10F1D, 0x10F26}, {0x10F51, 0x10F54}, {0x10FC5, 0x10FCB}, {0x11052, 0x1106F},
    {0x110F0, 0x110F9}, {0x11136, 0x1113F}, {0x111D0, 0x111D9}, {0x111E1, 0x111F4},
    {0x112F0, 0x112F9}, {0x11450, 0x11459}, {0x114D0, 0x114D9}, {0x11650, 0x11659},
    {0x116C0, 0x116C9}, {0x11730, 0x1173B}, {0x118E0, 0x118F2}, {0x11950, 0x11959},
    {0x11C50, 0x11C6C}, {0x11D50, 0x11D59}, {0x11DA0, 0x11DA9}, {0x11FC0, 0x11FD4},
    {0x12400, 0x1246E}, {0x16A60, 0x16A69}, {0x16AC0, 0x16AC9}, {0x16B50, 0x16B59},
    {0x16B5B, 0x16B61}, {0x16E80, 0x16E96}, {0x1D2E0, 0x1D2F3}, {0x1D360, 0x1D378},
    {0x1D7CE, 0x1D7FF}, {0x1E140, 0x1E149}, {0x1E2F0, 0x1E2F9}, {0x1E8C7, 0x1E8CF},
    {0x1E950, 0x1E959}, {0x1EC71, 0x1ECAB}, {0x1ECAD, 0x1ECAF}, {0x1ECB1, 0x1ECB4},
    {0x1ED01, 0x1ED2D}, {0x1ED2F, 0x1ED3D}, {0x1F100, 0x1F10C}, {0x1FBF0, 0x1FBF9},
};

static int in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static int uni_is_letter(uint32_t cp) {
    if (cp < 128) return (cp | 32) - 'a' < 26;
    return in_ranges(uni_letter, sizeof uni_letter / sizeof uni_letter[0], cp);
}

static int uni_is_number(uint32_t cp) {
    if (cp < 128) return cp - '0' < 10;
    return in_ranges(uni_number, sizeof uni_number / sizeof uni_number[0], cp);
}

static int uni_is_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* ---- the tokenizer ---- */

typedef enum { PRE_NONE = 0, PRE_GPT2, PRE_LLAMA3, PRE_QWEN2 } pre_kind;

struct tokenizer {
    tokenizer_kind kind;
    pre_kind pre;
    int ignore_merges;      /* llama3: a word that is a token is not split */
    int n_vocab;
    char *arena;            /* every token's text */
    char *pieces;           /* every token's piece (what it decodes to) */
    size_t *text_off;       /* [n_vocab] */
    uint32_t *text_len;     /* [n_vocab] */
    size_t *piece_off;      /* [n_vocab] */
    uint32_t *piece_len;    /* [n_vocab] */
    float *score;           /* [n_vocab] */
    uint8_t *type;          /* [n_vocab] token_type */
    uint8_t *eog;           /* [n_vocab] 1 = end of generation */
    uint32_t *map;          /* [map_cap] text -> id+1, 0 = empty */
    size_t map_cap;
    int32_t bos, eos, unk;
    int add_bos;
    int add_space_prefix;
    int32_t byte_id[256];   /* SPM: token of each byte; BPE: token of its byte character */
    char b2u[256][3];       /* BPE: byte -> UTF-8 of GPT-2's printable character */
    uint8_t b2u_len[256];
    int16_t u2b[324];       /* BPE: GPT-2 character (code point < 324) -> byte, -1 if none */
    uint64_t *merge_key;    /* [merge_cap] (left id << 32 | right id) + 1, 0 = empty */
    int32_t *merge_rank;    /* [merge_cap] */
    size_t merge_cap;
    int32_t *special;       /* ids matched in raw text (control, user-defined, unknown) */
    int n_special;
    int special_lens[64];   /* distinct lengths of special texts */
    int n_special_lens;
};

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h;
}

static const char *tok_text(const tokenizer *t, int32_t id) { return t->arena + t->text_off[id]; }

static int32_t map_find(const tokenizer *t, const char *s, size_t n) {
    size_t mask = t->map_cap - 1, i = hash_bytes(s, n) & mask;
    for (; t->map[i]; i = (i + 1) & mask) {
        int32_t id = (int32_t)t->map[i] - 1;
        if (t->text_len[id] == n && !memcmp(tok_text(t, id), s, n)) return id;
    }
    return -1;
}

/* Later ids win over earlier ones with the same text, as in llama.cpp's token_to_id. */
static void map_put(tokenizer *t, int32_t id) {
    size_t n = t->text_len[id], mask = t->map_cap - 1;
    size_t i = hash_bytes(tok_text(t, id), n) & mask;
    for (; t->map[i]; i = (i + 1) & mask) {
        int32_t other = (int32_t)t->map[i] - 1;
        if (t->text_len[other] == n && !memcmp(tok_text(t, other), tok_text(t, id), n)) break;
    }
    t->map[i] = (uint32_t)id + 1;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int32_t merge_find(const tokenizer *t, int32_t l, int32_t r) {
    if (!t->merge_cap || l < 0 || r < 0) return -1;
    uint64_t key = ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1;
    size_t mask = t->merge_cap - 1, i = mix64(key) & mask;
    for (; t->merge_key[i]; i = (i + 1) & mask)
        if (t->merge_key[i] == key) return t->merge_rank[i];
    return -1;
}

/* The first rank of a pair wins, as std::map::emplace does in llama.cpp. */
static void merge_put(tokenizer *t, int32_t l, int32_t r, int32_t rank) {
    uint64_t key = ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1;
    size_t mask = t->merge_cap - 1, i = mix64(key) & mask;
    for (; t->merge_key[i]; i = (i + 1) & mask)
        if (t->merge_key[i] == key) return;
    t->merge_key[i] = key;
    t->merge_rank[i] = rank;
}

/* ---- growable buffers ---- */

typedef struct ibuf {
    int32_t *v;
    int n, cap;
} ibuf;

static void ibuf_push(ibuf *b, int32_t x) {
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->v = rb_realloc(b->v, (size_t)b->cap * sizeof *b->v);
    }
    b->v[b->n++] = x;
}

typedef struct cbuf {
    char *s;
    size_t n, cap;
} cbuf;

static void cbuf_put(cbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 256;
        b->s = rb_realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static size_t utf8_len(uint8_t c) {
    static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

static size_t utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* One code point at s[*i..n) with llama.cpp's rules (unicode_cpt_from_utf8): a lead byte
 * and the right number of continuation bytes, no overlong or surrogate checks; anything
 * else is one invalid byte, returned as U+FFFD. */
static uint32_t utf8_next(const uint8_t *s, size_t n, size_t *i) {
    uint8_t c = s[*i];
    size_t need;
    uint32_t cp;
    if (c < 0x80) { (*i)++; return c; }
    if (!(c & 0x40)) { (*i)++; return 0xFFFD; }
    if (!(c & 0x20)) { need = 1; cp = c & 0x1F; }
    else if (!(c & 0x10)) { need = 2; cp = c & 0x0F; }
    else if (!(c & 0x08)) { need = 3; cp = c & 0x07; }
    else { (*i)++; return 0xFFFD; }
    if (*i + need >= n) { (*i)++; return 0xFFFD; }
    for (size_t k = 1; k <= need; k++) {
        if ((s[*i + k] & 0xC0) != 0x80) { (*i)++; return 0xFFFD; }
        cp = cp << 6 | (s[*i + k] & 0x3F);
    }
    *i += need + 1;
    return cp;
}

/* ---- loading ---- */

static int str_is(gguf_str s, const char *want) {
    return s.n == strlen(want) && !memcmp(s.s, want, s.n);
}

/* GPT-2's byte -> printable code point map (bytes_to_unicode in GPT-2's encoder.py). */
static void build_byte_map(tokenizer *t) {
    int n = 0;
    for (int c = 0; c < 324; c++) t->u2b[c] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        uint32_t cp = printable ? (uint32_t)b : (uint32_t)(256 + n++);
        t->b2u_len[b] = (uint8_t)utf8_put(cp, t->b2u[b]);
        t->u2b[cp] = (int16_t)b;
    }
}

/* llama.cpp treats these control texts as end of generation (llama-vocab.cpp). */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
    "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
    ("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"), /* split: \x9c"e" */
};

static rb_status get_special_id(tokenizer *t, const gguf_file *g, const char *key, int32_t *id,
                                rb_err *e) {
    *id = -1;
    if (!gguf_has_key(g, key)) return RB_OK;
    int64_t v;
    rb_status st = gguf_get_int(g, key, &v, e);
    if (st) return st;
    if (v < 0 || v >= t->n_vocab)
        return rb_fail(e, RB_EINPUT, gguf_path(g), "%s = %lld is outside the vocabulary of %d",
                       key, (long long)v, t->n_vocab);
    *id = (int32_t)v;
    return RB_OK;
}

typedef struct len_id {
    uint32_t len;
    int32_t id;
} len_id;

/* Longest text first (llama.cpp sorts cache_special_tokens so); ties by id. */
static int cmp_len_id(const void *a, const void *b) {
    const len_id *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Sort ids by (text length descending, id). */
static void sort_specials(const tokenizer *t, int32_t *ids, int n) {
    if (n < 2) return;
    len_id *v = rb_malloc((size_t)n * sizeof *v);
    for (int i = 0; i < n; i++) v[i] = (len_id){t->text_len[ids[i]], ids[i]};
    qsort(v, (size_t)n, sizeof *v, cmp_len_id);
    for (int i = 0; i < n; i++) ids[i] = v[i].id;
    free(v);
}

/* The piece a token decodes to (see tokenizer_decode_token). */
static void make_piece(tokenizer *t, int32_t id, cbuf *out) {
    const char *s = tok_text(t, id);
    size_t n = t->text_len[id];
    int type = t->type[id];
    if (t->kind == TOKENIZER_SPM && type == TOKEN_BYTE && n == 6 && !memcmp(s, "<0x", 3) &&
        s[5] == '>') {
        unsigned v;
        char hex[3] = {s[3], s[4], 0};
        if (sscanf(hex, "%2x", &v) == 1) {
            char c = (char)v;
            cbuf_put(out, &c, 1);
            return;
        }
    }
    if (type == TOKEN_CONTROL || type == TOKEN_USER_DEFINED || type == TOKEN_UNKNOWN) {
        cbuf_put(out, s, n);
        return;
    }
    if (t->kind == TOKENIZER_SPM) {
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && !memcmp(s + i, "\xe2\x96\x81", 3)) {
                cbuf_put(out, " ", 1);
                i += 3;
            } else {
                cbuf_put(out, s + i, 1);
                i++;
            }
        }
        return;
    }
    /* Byte level: each code point back to its byte; one outside the map stays as is. */
    for (size_t i = 0; i < n;) {
        size_t at = i;
        uint32_t cp = utf8_next((const uint8_t *)s, n, &i);
        int byte = cp < 324 ? t->u2b[cp] : -1;
        if (byte >= 0) {
            char c = (char)byte;
            cbuf_put(out, &c, 1);
        } else {
            cbuf_put(out, s + at, i - at);
        }
    }
}

static rb_status load_merges(tokenizer *t, const gguf_file *g, rb_err *e) {
    const char *key = "tokenizer.ggml.merges";
    gguf_value_type et;
    uint64_t n;
    rb_status st = gguf_get_array(g, key, &et, &n, e);
    if (st) return st;
    if (et != GGUF_VT_STRING)
        return rb_fail(e, RB_EINPUT, gguf_path(g), "%s is not an array of strings", key);
    if (n > INT32_MAX) return rb_fail(e, RB_EINPUT, gguf_path(g), "%s is too long", key);
    t->merge_cap = 16;
    while (t->merge_cap < n * 2 + 1) t->merge_cap *= 2;
    t->merge_key = rb_calloc(t->merge_cap, sizeof *t->merge_key);
    t->merge_rank = rb_malloc(t->merge_cap * sizeof *t->merge_rank);
    for (uint64_t i = 0; i < n; i++) {
        gguf_str m = gguf_array_str(g, key, i);
        /* Split at the first space after the first byte, as llama.cpp does. */
        const char *sp = m.n > 1 ? memchr(m.s + 1, ' ', m.n - 1) : NULL;
        if (!sp)
            return rb_fail(e, RB_EINPUT, gguf_path(g), "%s[%llu] '%.*s' is not two parts", key,
                           (unsigned long long)i, (int)(m.n > 60 ? 60 : m.n), m.s);
        size_t nl = (size_t)(sp - m.s);
        int32_t l = map_find(t, m.s, nl), r = map_find(t, sp + 1, m.n - nl - 1);
        /* A merge whose parts are not tokens can never apply to token symbols: skip it. */
        if (l >= 0 && r >= 0) merge_put(t, l, r, (int32_t)i);
    }
    return RB_OK;
}

rb_status tokenizer_load(const gguf_file *g, tokenizer **out, rb_err *e) {
    *out = NULL;
    const char *path = gguf_path(g);
    gguf_str model, pre = {"", 0};
    rb_status st = gguf_get_str(g, "tokenizer.ggml.model", &model, e);
    if (st) return st;
    tokenizer *t = rb_calloc(1, sizeof *t);
    if (str_is(model, "llama")) {
        t->kind = TOKENIZER_SPM;
    } else if (str_is(model, "gpt2")) {
        t->kind = TOKENIZER_BPE;
        if (gguf_has_key(g, "tokenizer.ggml.pre") &&
            (st = gguf_get_str(g, "tokenizer.ggml.pre", &pre, e)))
            goto fail;
        /* The names llama.cpp maps to these expressions (llama-vocab.cpp). */
        if (str_is(pre, "gpt-2") || str_is(pre, "phi-2")) {
            t->pre = PRE_GPT2;
        } else if (str_is(pre, "llama-bpe") || str_is(pre, "llama3") || str_is(pre, "llama-v3")) {
            t->pre = PRE_LLAMA3;
            t->ignore_merges = 1;
        } else if (str_is(pre, "qwen2") || str_is(pre, "deepseek-r1-qwen")) {
            t->pre = PRE_QWEN2;
        } else {
            st = rb_fail(e, RB_EINPUT, path,
                         "tokenizer.ggml.pre '%.*s' is not supported (supported: gpt-2, phi-2, "
                         "llama-bpe, llama3, llama-v3, qwen2, deepseek-r1-qwen); refusing to "
                         "tokenize approximately",
                         (int)(pre.n > 60 ? 60 : pre.n), pre.s);
            goto fail;
        }
    } else {
        st = rb_fail(e, RB_EINPUT, path,
                     "tokenizer.ggml.model '%.*s' is not supported (supported: llama, gpt2)",
                     (int)(model.n > 60 ? 60 : model.n), model.s);
        goto fail;
    }

    gguf_value_type et;
    uint64_t n;
    if ((st = gguf_get_array(g, "tokenizer.ggml.tokens", &et, &n, e))) goto fail;
    if (et != GGUF_VT_STRING || n == 0 || n > INT32_MAX) {
        st = rb_fail(e, RB_EINPUT, path, "tokenizer.ggml.tokens is not a non-empty array of "
                     "strings");
        goto fail;
    }
    t->n_vocab = (int)n;
    /* The model can choose any row of its embedding: each needs a token, or generated ids
     * past the vocabulary would vanish from the text. (llama.cpp requires the same.) */
    const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    if (emb && emb->n_dims == 2 && emb->ne[1] != (int64_t)n) {
        st = rb_fail(e, RB_EINPUT, path, "tokenizer.ggml.tokens has %llu entries but "
                     "token_embd.weight has %lld rows: the vocabulary must cover every row",
                     (unsigned long long)n, (long long)emb->ne[1]);
        goto fail;
    }
    static const char *const opt_arrays[] = {"tokenizer.ggml.scores", "tokenizer.ggml.token_type"};
    for (int a = 0; a < 2; a++) {
        if (!gguf_has_key(g, opt_arrays[a])) continue;
        uint64_t m;
        if ((st = gguf_get_array(g, opt_arrays[a], &et, &m, e))) goto fail;
        int numeric = et != GGUF_VT_STRING && et != GGUF_VT_ARRAY;
        if (m != n || !numeric) {
            st = rb_fail(e, RB_EINPUT, path, "%s has %llu entries (%s), tokens has %llu",
                         opt_arrays[a], (unsigned long long)m,
                         numeric ? "numbers" : "not numbers", (unsigned long long)n);
            goto fail;
        }
    }
    int has_scores = gguf_has_key(g, "tokenizer.ggml.scores");
    int has_types = gguf_has_key(g, "tokenizer.ggml.token_type");

    t->text_off = rb_malloc(n * sizeof *t->text_off);
    t->text_len = rb_malloc(n * sizeof *t->text_len);
    t->piece_off = rb_malloc(n * sizeof *t->piece_off);
    t->piece_len = rb_malloc(n * sizeof *t->piece_len);
    t->score = rb_malloc(n * sizeof *t->score);
    t->type = rb_malloc(n);
    t->eog = rb_calloc(n, 1);
    cbuf arena = {0};
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = gguf_array_str(g, "tokenizer.ggml.tokens", i);
        if (s.n > UINT32_MAX) {
            st = rb_fail(e, RB_EINPUT, path, "token %llu is too long", (unsigned long long)i);
            free(arena.s);
            goto fail;
        }
        t->text_off[i] = arena.n;
        t->text_len[i] = (uint32_t)s.n;
        cbuf_put(&arena, s.s, (size_t)s.n);
        t->score[i] = has_scores ? (float)gguf_array_num(g, "tokenizer.ggml.scores", i) : 0.0f;
        double ty = has_types ? gguf_array_num(g, "tokenizer.ggml.token_type", i) : TOKEN_NORMAL;
        if (!(ty >= TOKEN_NORMAL && ty <= TOKEN_BYTE)) {
            st = rb_fail(e, RB_EINPUT, path, "tokenizer.ggml.token_type[%llu] = %g is not 1..6",
                         (unsigned long long)i, ty);
            free(arena.s);
            goto fail;
        }
        t->type[i] = (uint8_t)ty;
    }
    t->arena = arena.s;
    t->map_cap = 16;
    while (t->map_cap < n * 2 + 1) t->map_cap *= 2;
    t->map = rb_calloc(t->map_cap, sizeof *t->map);
    for (int32_t i = 0; i < t->n_vocab; i++) map_put(t, i);

    int32_t eot, eom;
    if ((st = get_special_id(t, g, "tokenizer.ggml.bos_token_id", &t->bos, e)) ||
        (st = get_special_id(t, g, "tokenizer.ggml.eos_token_id", &t->eos, e)) ||
        (st = get_special_id(t, g, "tokenizer.ggml.unknown_token_id", &t->unk, e)) ||
        (st = get_special_id(t, g, "tokenizer.ggml.eot_token_id", &eot, e)) ||
        (st = get_special_id(t, g, "tokenizer.ggml.eom_token_id", &eom, e)))
        goto fail;
    if (t->kind == TOKENIZER_SPM && t->unk < 0) t->unk = map_find(t, "<unk>", 5);
    t->add_bos = t->kind == TOKENIZER_SPM;
    t->add_space_prefix = t->kind == TOKENIZER_SPM;
    if (gguf_has_key(g, "tokenizer.ggml.add_bos_token") &&
        (st = gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos, e)))
        goto fail;
    if (gguf_has_key(g, "tokenizer.ggml.add_space_prefix") &&
        (st = gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, e)))
        goto fail;
    if (t->kind == TOKENIZER_BPE) t->add_space_prefix = 0;

    /* End of generation; llama.cpp also forces these texts to be control tokens. */
    for (size_t k = 0; k < sizeof eog_texts / sizeof eog_texts[0]; k++) {
        int32_t id = map_find(t, eog_texts[k], strlen(eog_texts[k]));
        if (id >= 0) {
            t->eog[id] = 1;
            t->type[id] = TOKEN_CONTROL;
        }
    }
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (eot >= 0) t->eog[eot] = 1;
    if (eom >= 0) t->eog[eom] = 1;

    if (t->kind == TOKENIZER_BPE) {
        build_byte_map(t);
        for (int b = 0; b < 256; b++) t->byte_id[b] = map_find(t, t->b2u[b], t->b2u_len[b]);
        if (!gguf_has_key(g, "tokenizer.ggml.merges")) {
            st = rb_fail(e, RB_EINPUT, path, "tokenizer.ggml.merges is missing (needed by gpt2)");
            goto fail;
        }
        if ((st = load_merges(t, g, e))) goto fail;
    } else {
        for (int b = 0; b < 256; b++) {
            char name[8], one = (char)b;
            snprintf(name, sizeof name, "<0x%02X>", b);
            int32_t id = map_find(t, name, 6);
            if (id < 0) id = map_find(t, &one, 1);
            t->byte_id[b] = id >= 0 ? id : t->unk;
        }
    }

    /* Special tokens matched in raw text, longest first. */
    ibuf sp = {0};
    for (int32_t i = 0; i < t->n_vocab; i++)
        if ((t->type[i] == TOKEN_CONTROL || t->type[i] == TOKEN_USER_DEFINED ||
             t->type[i] == TOKEN_UNKNOWN) && t->text_len[i] > 0 &&
            map_find(t, tok_text(t, i), t->text_len[i]) == i)
            ibuf_push(&sp, i);
    sort_specials(t, sp.v, sp.n);
    t->special = sp.v;
    t->n_special = sp.n;
    for (int i = 0; i < sp.n; i++) {
        int len = (int)t->text_len[sp.v[i]], seen = 0;
        for (int k = 0; k < t->n_special_lens; k++) seen |= t->special_lens[k] == len;
        if (!seen) {
            if (t->n_special_lens == (int)(sizeof t->special_lens / sizeof t->special_lens[0])) {
                st = rb_fail(e, RB_EINPUT, path, "more than 64 distinct special-token lengths");
                goto fail;
            }
            t->special_lens[t->n_special_lens++] = len;
        }
    }

    cbuf pieces = {0};
    cbuf_put(&pieces, "", 0);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t before = pieces.n;
        make_piece(t, i, &pieces);
        t->piece_off[i] = before;
        t->piece_len[i] = (uint32_t)(pieces.n - before);
    }
    t->pieces = pieces.s;
    *out = t;
    return RB_OK;
fail:
    tokenizer_destroy(t);
    return st;
}

void tokenizer_destroy(tokenizer *t) {
    if (!t) return;
    free(t->arena);
    free(t->pieces);
    free(t->text_off);
    free(t->text_len);
    free(t->piece_off);
    free(t->piece_len);
    free(t->score);
    free(t->type);
    free(t->eog);
    free(t->map);
    free(t->merge_key);
    free(t->merge_rank);
    free(t->special);
    free(t);
}

tokenizer_kind tokenizer_model(const tokenizer *t) { return t->kind; }
int tokenizer_n_vocab(const tokenizer *t) { return t->n_vocab; }
int32_t tokenizer_bos(const tokenizer *t) { return t->bos; }
int32_t tokenizer_eos(const tokenizer *t) { return t->eos; }
int tokenizer_add_bos(const tokenizer *t) { return t->add_bos; }

int tokenizer_is_eog(const tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

int tokenizer_token_type(const tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->type[id] : 0;
}

int32_t tokenizer_find(const tokenizer *t, const char *text) {
    return map_find(t, text, strlen(text));
}

/* ---- merging: a symbol chain and a heap of candidate pairs ---- */

typedef struct symbol {
    size_t start, n;  /* bytes of the working text */
    int prev, next;   /* neighbours in the chain, -1 at the ends */
    int32_t id;       /* BPE: token of the symbol's text, -1 if none */
} symbol;

typedef struct bigram {
    double key;       /* SPM: score (higher first); BPE: -rank (lower rank first) */
    int left, right;
    size_t size;      /* SPM: bytes of the pair when queued */
    int32_t lid, rid; /* BPE: the two ids when queued */
} bigram;

typedef struct heap {
    bigram *v;
    int n, cap;
} heap;

/* a comes out before b: larger key, then leftmost (both tokenizers break ties so). */
static int before(const bigram *a, const bigram *b) {
    return a->key > b->key || (a->key == b->key && a->left < b->left);
}

static void heap_push(heap *h, bigram x) {
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 64;
        h->v = rb_realloc(h->v, (size_t)h->cap * sizeof *h->v);
    }
    int i = h->n++;
    while (i > 0 && before(&x, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = x;
}

static bigram heap_pop(heap *h) {
    bigram top = h->v[0], last = h->v[--h->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && before(&h->v[c + 1], &h->v[c])) c++;
        if (!before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* SentencePiece: queue the pair if its concatenation is a token (llama.cpp's
 * try_add_bigram; any token type counts). */
static void spm_try_pair(const tokenizer *t, const char *txt, const symbol *sym, int l, int r,
                         heap *h) {
    if (l < 0 || r < 0) return;
    size_t size = sym[l].n + sym[r].n;
    int32_t id = map_find(t, txt + sym[l].start, size);
    if (id < 0) return;
    bigram b = {.key = t->score[id], .left = l, .right = r, .size = size};
    heap_push(h, b);
}

static void build_symbols(const char *txt, size_t n, symbol **sym_out, int *n_sym) {
    symbol *sym = rb_malloc((n ? n : 1) * sizeof *sym);
    int k = 0;
    for (size_t off = 0; off < n;) {
        size_t len = utf8_len((uint8_t)txt[off]);
        if (len > n - off) len = n - off;
        sym[k] = (symbol){off, len, k - 1, off + len == n ? -1 : k + 1, -1};
        off += len;
        k++;
    }
    *sym_out = sym;
    *n_sym = k;
}

/* Tokenize one raw fragment (already escaped) with SentencePiece merges. */
static rb_status spm_fragment(const tokenizer *t, const char *txt, size_t n, ibuf *out,
                              rb_err *e) {
    symbol *sym;
    int n_sym;
    build_symbols(txt, n, &sym, &n_sym);
    heap h = {0};
    for (int i = 1; i < n_sym; i++) spm_try_pair(t, txt, sym, i - 1, i, &h);
    while (h.n) {
        bigram b = heap_pop(&h);
        symbol *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        spm_try_pair(t, txt, sym, l->prev, b.left, &h);
        spm_try_pair(t, txt, sym, b.left, l->next, &h);
    }
    rb_status st = RB_OK;
    for (int i = n_sym ? 0 : -1; i >= 0 && !st; i = sym[i].next) {
        int32_t id = map_find(t, txt + sym[i].start, sym[i].n);
        if (id >= 0) {
            ibuf_push(out, id);
            continue;
        }
        for (size_t j = 0; j < sym[i].n; j++) {
            int32_t bid = t->byte_id[(uint8_t)txt[sym[i].start + j]];
            if (bid < 0) {
                st = rb_fail(e, RB_EINPUT, "tokenizer",
                             "byte 0x%02X has no token (no <0x%02X>, no unknown token)",
                             (uint8_t)txt[sym[i].start + j], (uint8_t)txt[sym[i].start + j]);
                break;
            }
            ibuf_push(out, bid);
        }
    }
    free(sym);
    free(h.v);
    return st;
}

static void bpe_try_pair(const tokenizer *t, const symbol *sym, int l, int r, heap *h) {
    if (l < 0 || r < 0) return;
    int32_t rank = merge_find(t, sym[l].id, sym[r].id);
    if (rank < 0) return;
    bigram b = {.key = -(double)rank, .left = l, .right = r, .lid = sym[l].id, .rid = sym[r].id};
    heap_push(h, b);
}

/* One pre-tokenized word: bytes -> GPT-2 characters -> merges by rank. */
static void bpe_word(const tokenizer *t, const uint8_t *w, size_t n, cbuf *enc, ibuf *out) {
    enc->n = 0;
    for (size_t i = 0; i < n; i++) cbuf_put(enc, t->b2u[w[i]], t->b2u_len[w[i]]);
    if (t->ignore_merges) {
        int32_t id = map_find(t, enc->s, enc->n);
        if (id >= 0) {
            ibuf_push(out, id);
            return;
        }
    }
    symbol *sym = rb_malloc((n ? n : 1) * sizeof *sym);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        sym[i] = (symbol){off, t->b2u_len[w[i]], (int)i - 1, i + 1 == n ? -1 : (int)i + 1,
                          t->byte_id[w[i]]};
        off += t->b2u_len[w[i]];
    }
    heap h = {0};
    for (size_t i = 1; i < n; i++) bpe_try_pair(t, sym, (int)i - 1, (int)i, &h);
    while (h.n) {
        bigram b = heap_pop(&h);
        symbol *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->next != b.right || l->id != b.lid || r->id != b.rid)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        l->id = map_find(t, enc->s + l->start, l->n);
        bpe_try_pair(t, sym, l->prev, b.left, &h);
        bpe_try_pair(t, sym, b.left, l->next, &h);
    }
    for (int i = n ? 0 : -1; i >= 0; i = sym[i].next) {
        if (sym[i].id >= 0) {
            ibuf_push(out, sym[i].id);
            continue;
        }
        /* As llama.cpp: a symbol that is no token falls back to its single bytes, when
         * those happen to be tokens. */
        for (size_t j = 0; j < sym[i].n; j++) {
            int32_t id = map_find(t, enc->s + sym[i].start + j, 1);
            if (id >= 0) ibuf_push(out, id);
        }
    }
    free(sym);
    free(h.v);
}

/* ---- byte-level pre-tokenizers (llama.cpp's unicode_regex_split_custom_gpt2 and
 * _llama3; qwen2 is llama3's expression with single digits) ---- */

enum { F_LETTER = 1, F_NUMBER = 2, F_SPACE = 4, F_VALID = 8 };

typedef struct pretok {
    const uint32_t *cp;   /* [n] code points */
    size_t n;
    size_t prev_end;
    ibuf *ends;           /* word ends, in code points */
} pretok;

static unsigned cp_flags(const pretok *p, size_t pos) {
    if (pos >= p->n) return 0;
    uint32_t c = p->cp[pos];
    return F_VALID | (uni_is_letter(c) ? F_LETTER : 0) | (uni_is_number(c) ? F_NUMBER : 0) |
           (uni_is_space(c) ? F_SPACE : 0);
}

static uint32_t cp_at(const pretok *p, size_t pos) {
    return pos < p->n ? p->cp[pos] : 0xFFFFFFFFu;
}

static size_t add_word(pretok *p, size_t end) {
    size_t len = end - p->prev_end;
    if (len > 0) ibuf_push(p->ends, (int32_t)end);
    p->prev_end = end;
    return len;
}

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Contractions 's 't 'm 'd 're 've 'll; returns their length or 0. */
static size_t contraction(const pretok *p, size_t pos, int fold) {
    if (cp_at(p, pos) != '\'' || pos + 1 >= p->n) return 0;
    uint32_t a = cp_at(p, pos + 1);
    if (fold) a = ascii_lower(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= p->n) return 0;
    uint32_t b = cp_at(p, pos + 2);
    if (fold) b = ascii_lower(b);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* Classes of the runs the expressions match: \p{L}+, \p{N}+ and [^\s\p{L}\p{N}]+. */
enum { RUN_LETTER, RUN_NUMBER, RUN_OTHER };

static int in_run(unsigned f, int run) {
    switch (run) {
    case RUN_LETTER: return (f & F_LETTER) != 0;
    case RUN_NUMBER: return (f & F_NUMBER) != 0;
    default: return (f & F_VALID) && !(f & (F_SPACE | F_LETTER | F_NUMBER));
    }
}

/* The end of the run of class `run` that starts at pos (pos itself when none does). */
static size_t run_end(const pretok *p, size_t pos, int run) {
    while (in_run(cp_flags(p, pos), run)) pos++;
    return pos;
}

/* The whitespace rules both expressions end with, at a position no earlier rule took:
 * \s*[\r\n]+ (with `newlines`, llama3: through the run's last newline), then \s+(?!\S)
 * (the run but its last space when more follows), \s+ (the whole run), else the code
 * point alone. Adds the word; returns the position after it. */
static size_t split_spaces(pretok *p, size_t pos, int newlines) {
    size_t nws = 0, last_rn = 0;
    while (cp_flags(p, pos + nws) & F_SPACE) {
        uint32_t c = cp_at(p, pos + nws);
        if (newlines && (c == '\r' || c == '\n')) last_rn = pos + nws + 1;
        nws++;
    }
    if (last_rn > 0)
        pos = last_rn;
    else if (nws > 1 && pos + nws < p->n)
        pos += nws - 1;
    else
        pos += nws > 0 ? nws : 1;
    add_word(p, pos);
    return pos;
}

static void split_gpt2(pretok *p) {
    for (size_t pos = 0; pos < p->n;) {
        uint32_t c = cp_at(p, pos);
        size_t k = contraction(p, pos, 0);
        if (k) {
            pos += add_word(p, pos + k);
            continue;
        }
        /* ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+', first match wins */
        size_t start = pos + (c == ' ');
        unsigned f2 = cp_flags(p, start);
        int run = in_run(f2, RUN_LETTER) ? RUN_LETTER
                  : in_run(f2, RUN_NUMBER) ? RUN_NUMBER
                  : in_run(f2, RUN_OTHER)  ? RUN_OTHER
                                           : -1;
        if (run >= 0) {
            pos = run_end(p, start, run);
            add_word(p, pos);
            continue;
        }
        pos = split_spaces(p, pos, 0);
    }
}

static void split_llama3(pretok *p, size_t max_digits) {
    for (size_t pos = 0; pos < p->n;) {
        uint32_t c = cp_at(p, pos);
        unsigned f = cp_flags(p, pos);
        size_t k = contraction(p, pos, 1);
        if (k) {
            pos += add_word(p, pos + k);
            continue;
        }
        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (!(c == '\r' || c == '\n' || (f & F_NUMBER)) &&
            ((f & F_LETTER) || (cp_flags(p, pos + 1) & F_LETTER))) {
            pos = run_end(p, pos + 1, RUN_LETTER);
            add_word(p, pos);
            continue;
        }
        /* \p{N}{1,max_digits} */
        if (f & F_NUMBER) {
            size_t ini = pos;
            while (cp_flags(p, pos) & F_NUMBER) {
                if (++pos - ini >= max_digits) {
                    add_word(p, pos);
                    ini = pos;
                }
            }
            add_word(p, pos);
            continue;
        }
        /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' (f is valid here: pos < n) */
        size_t start = pos + (c == ' ');
        if (!(cp_flags(p, start) & (F_SPACE | F_LETTER | F_NUMBER)) && (f & F_VALID)) {
            pos = run_end(p, start, RUN_OTHER);
            while (cp_at(p, pos) == '\r' || cp_at(p, pos) == '\n') pos++;
            add_word(p, pos);
            continue;
        }
        pos = split_spaces(p, pos, 1);
    }
}

/* Tokenize one raw fragment with byte-level BPE. Invalid UTF-8 becomes U+FFFD first, as
 * llama.cpp's code point round trip does. */
static void bpe_fragment(const tokenizer *t, const char *txt, size_t n, ibuf *out) {
    uint32_t *cp = rb_malloc((n ? n : 1) * sizeof *cp);
    size_t ncp = 0;
    for (size_t i = 0; i < n;) cp[ncp++] = utf8_next((const uint8_t *)txt, n, &i);
    ibuf ends = {0};
    pretok p = {cp, ncp, 0, &ends};
    if (t->pre == PRE_GPT2) split_gpt2(&p);
    else split_llama3(&p, t->pre == PRE_QWEN2 ? 1 : 3);
    cbuf word = {0}, enc = {0};
    size_t start = 0;
    for (int w = 0; w < ends.n; w++) {
        word.n = 0;
        for (size_t i = start; i < (size_t)ends.v[w]; i++) {
            char u[4];
            cbuf_put(&word, u, utf8_put(cp[i], u));
        }
        bpe_word(t, (const uint8_t *)word.s, word.n, &enc, out);
        start = (size_t)ends.v[w];
    }
    free(word.s);
    free(enc.s);
    free(ends.v);
    free(cp);
}

/* ---- special-token partition (llama.cpp's tokenizer_st_partition) ---- */

typedef struct fragment {
    int32_t id;          /* >= 0: a special token; -1: raw text */
    size_t start, len;   /* raw text: bytes of the input */
} fragment;

static int matchable(const tokenizer *t, int32_t id, int parse_special) {
    int ty = t->type[id];
    if (ty == TOKEN_USER_DEFINED) return 1;
    return parse_special && (ty == TOKEN_CONTROL || ty == TOKEN_UNKNOWN);
}

/* Split text into raw fragments and special tokens. Each special token, longest first,
 * takes its leftmost non-overlapping occurrences in what is still raw, exactly as
 * llama.cpp does; only specials that occur in the text at all are tried. */
static void partition(const tokenizer *t, const char *text, size_t n, int parse_special,
                      fragment **out, int *n_out) {
    ibuf found = {0};
    for (size_t pos = 0; pos < n && t->n_special; pos++)
        for (int k = 0; k < t->n_special_lens; k++) {
            size_t len = (size_t)t->special_lens[k];
            if (len > n - pos) continue;
            int32_t id = map_find(t, text + pos, len);
            if (id >= 0 && matchable(t, id, parse_special)) ibuf_push(&found, id);
        }
    /* Sorted, then duplicates (the same token found at several places) dropped. */
    sort_specials(t, found.v, found.n);
    int n_found = 0;
    for (int i = 0; i < found.n; i++)
        if (!n_found || found.v[n_found - 1] != found.v[i]) found.v[n_found++] = found.v[i];
    found.n = n_found;
    int cap = 1, m = 1;
    fragment *fr = rb_malloc(sizeof *fr);
    fr[0] = (fragment){-1, 0, n};
    for (int s = 0; s < found.n; s++) {
        int32_t id = found.v[s];
        const char *st = tok_text(t, id);
        size_t sl = t->text_len[id];
        int ncap = cap, nm = 0;
        fragment *nf = rb_malloc((size_t)ncap * sizeof *nf);
        for (int i = 0; i < m; i++) {
            fragment f = fr[i];
            size_t at = f.start, end = f.start + f.len;
            while (f.id < 0 && at < end) {
                const char *hit = memmem(text + at, end - at, st, sl);
                if (!hit) break;
                size_t h = (size_t)(hit - text);
                if (nm + 2 >= ncap) {
                    ncap = 2 * ncap + 4;
                    nf = rb_realloc(nf, (size_t)ncap * sizeof *nf);
                }
                if (h > at) nf[nm++] = (fragment){-1, at, h - at};
                nf[nm++] = (fragment){id, h, sl};
                at = h + sl;
            }
            if (nm + 1 >= ncap) {
                ncap = 2 * ncap + 4;
                nf = rb_realloc(nf, (size_t)ncap * sizeof *nf);
            }
            if (f.id >= 0) nf[nm++] = f;
            else if (at < end) nf[nm++] = (fragment){-1, at, end - at};
        }
        free(fr);
        fr = nf;
        m = nm;
        cap = ncap;
    }
    free(found.v);
    *out = fr;
    *n_out = m;
}

/* ---- encode / decode ---- */

rb_status tokenizer_encode_ex(const tokenizer *t, const char *text, size_t len, int add_bos,
                              int parse_special, int32_t **ids, int *n, rb_err *e) {
    *ids = NULL;
    *n = 0;
    if (!text) return rb_fail(e, RB_EINPUT, "tokenizer", "no text to encode");
    if (len > (size_t)INT32_MAX / 4)
        return rb_fail(e, RB_EINPUT, "tokenizer", "text of %zu bytes is too long", len);
    ibuf out = {0};
    if (add_bos && t->bos >= 0) ibuf_push(&out, t->bos);
    fragment *fr;
    int m;
    partition(t, text, len, parse_special, &fr, &m);
    cbuf esc = {0};
    int prev_special = 1; /* the space prefix goes at the start and after special tokens */
    rb_status st = RB_OK;
    for (int i = 0; i < m && !st; i++) {
        if (fr[i].id >= 0) {
            ibuf_push(&out, fr[i].id);
            prev_special = 1;
            continue;
        }
        if (t->kind == TOKENIZER_BPE) {
            bpe_fragment(t, text + fr[i].start, fr[i].len, &out);
            continue;
        }
        esc.n = 0;
        if (t->add_space_prefix && prev_special) cbuf_put(&esc, "\xe2\x96\x81", 3);
        for (size_t j = 0; j < fr[i].len; j++) {
            char c = text[fr[i].start + j];
            if (c == ' ') cbuf_put(&esc, "\xe2\x96\x81", 3);
            else cbuf_put(&esc, &c, 1);
        }
        st = spm_fragment(t, esc.s, esc.n, &out, e);
        prev_special = 0;
    }
    free(esc.s);
    free(fr);
    if (st) {
        free(out.v);
        return st;
    }
    *ids = out.v ? out.v : rb_malloc(sizeof **ids);
    *n = out.n;
    return RB_OK;
}

rb_status tokenizer_encode(const tokenizer *t, const char *text, int add_bos, int32_t **ids,
                           int *n, rb_err *e) {
    if (!text) return rb_fail(e, RB_EINPUT, "tokenizer", "no text to encode");
    return tokenizer_encode_ex(t, text, strlen(text), add_bos, 1, ids, n, e);
}

const char *tokenizer_decode_token(const tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }
    *len = t->piece_len[id];
    return t->pieces + t->piece_off[id];
}

rb_status tokenizer_decode(const tokenizer *t, const int32_t *ids, int n, char **text,
                           size_t *len, rb_err *e) {
    *text = NULL;
    cbuf out = {0};
    cbuf_put(&out, "", 0);
    for (int i = 0; i < n; i++) {
        size_t k;
        const char *p = tokenizer_decode_token(t, ids[i], &k);
        if (!p) {
            free(out.s);
            return rb_fail(e, RB_EINPUT, "tokenizer", "token id %d at position %d is outside "
                           "the vocabulary of %d", ids[i], i, t->n_vocab);
        }
        cbuf_put(&out, p, k);
    }
    *text = out.s;
    if (len) *len = out.n;
    return RB_OK;
}
