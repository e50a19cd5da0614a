// Vietnamese normalisation before TTS. The expected texts were checked by
// reading each one as a Northern announcer would (see the choices at the top
// of normalize-vi.ts); diacritics are compared in NFC.
import { describe, it, expect } from 'vitest';
import { normalize, readInteger, loadDictionary, defaultDictionary, readDecimal } from '../gateway/src/tts/normalize-vi.js';
import { ValidationError } from '../gateway/src/core/validation.js';

const CARDINALS: Array<[string, string]> = [
  ['0', 'không'], ['5', 'năm'], ['10', 'mười'], ['11', 'mười một'], ['14', 'mười bốn'], ['15', 'mười lăm'],
  ['20', 'hai mươi'], ['21', 'hai mươi mốt'], ['24', 'hai mươi tư'], ['25', 'hai mươi lăm'], ['31', 'ba mươi mốt'],
  ['44', 'bốn mươi tư'], ['55', 'năm mươi lăm'], ['99', 'chín mươi chín'], ['100', 'một trăm'], ['101', 'một trăm linh một'],
  ['104', 'một trăm linh bốn'], ['105', 'một trăm linh năm'], ['110', 'một trăm mười'], ['115', 'một trăm mười lăm'],
  ['121', 'một trăm hai mươi mốt'], ['1000', 'một nghìn'], ['1005', 'một nghìn không trăm linh năm'],
  ['2025', 'hai nghìn không trăm hai mươi lăm'], ['2000', 'hai nghìn'], ['1975', 'một nghìn chín trăm bảy mươi lăm'],
  ['10000', 'mười nghìn'], ['15000', 'mười lăm nghìn'], ['21000', 'hai mươi mốt nghìn'], ['100000', 'một trăm nghìn'],
  ['1000000', 'một triệu'], ['1200000', 'một triệu hai trăm nghìn'], ['1000500', 'một triệu năm trăm'],
  ['1005000', 'một triệu không trăm linh năm nghìn'], ['1050000', 'một triệu không trăm năm mươi nghìn'],
  ['2500000000', 'hai tỷ năm trăm triệu'], ['1000000005', 'một tỷ không trăm linh năm'], ['007', 'bảy'],
];

describe('cardinal numbers', () => {
  it.each(CARDINALS)('%s → %s', (n, words) => {
    expect(readInteger(n)).toBe(words);
  });
  it('southern style: lẻ and ngàn', () => {
    expect(readInteger('105', 'south')).toBe('một trăm lẻ năm');
    expect(readInteger('2025', 'south')).toBe('hai ngàn không trăm hai mươi lăm');
  });
  it.each([['2', '5', 'hai phẩy năm'], ['2', '25', 'hai phẩy hai mươi lăm'], ['0', '05', 'không phẩy không năm'], ['3', '125', 'ba phẩy một hai năm']])('%s,%s → %s', (i, f, words) => {
    expect(readDecimal(i, f)).toBe(words);
  });
});

const SENTENCES: Array<[string, string]> = [
  ["UBND xã thông báo: từ 7h30 ngày 15/3/2025, người dân mang CCCD đến nhà văn hóa thôn 3 để tiêm vắc xin.",
    "Ủy ban nhân dân xã thông báo: từ bảy giờ ba mươi phút ngày mười lăm tháng ba năm hai nghìn không trăm hai mươi lăm, người dân mang căn cước công dân đến nhà văn hóa thôn ba để tiêm vắc xin."],
  ["Ngày 24/02/2025, HĐND xã tổ chức kỳ họp thứ 8.",
    "Ngày hai mươi tư tháng hai năm hai nghìn không trăm hai mươi lăm, hội đồng nhân dân xã tổ chức kỳ họp thứ tám."],
  ["Thời gian tiếp công dân: 7h30 - 11h30 các ngày thứ 2 đến thứ 6.",
    "Thời gian tiếp công dân: bảy giờ ba mươi phút đến mười một giờ ba mươi phút các ngày thứ hai đến thứ sáu."],
  ["Hạn nộp hồ sơ là 17:00 ngày 30/4/2025.",
    "Hạn nộp hồ sơ là mười bảy giờ ngày ba mươi tháng tư năm hai nghìn không trăm hai mươi lăm."],
  ["Mọi thông tin xin liên hệ số điện thoại 0912 345 678.",
    "Mọi thông tin xin liên hệ số điện thoại không chín một hai, ba bốn năm, sáu bảy tám."],
  ["Đường dây nóng của Công an xã: 0912.345.678.",
    "Đường dây nóng của Công an xã: không chín một hai, ba bốn năm, sáu bảy tám."],
  ["Khi có cháy, gọi 114.",
    "Khi có cháy, gọi một một bốn."],
  ["Người dân có thể gọi +84 912 345 678 để được hỗ trợ.",
    "Người dân có thể gọi cộng tám bốn, chín một hai, ba bốn năm, sáu bảy tám để được hỗ trợ."],
  ["Mức hỗ trợ là 500.000 đồng mỗi hộ.",
    "Mức hỗ trợ là năm trăm nghìn đồng mỗi hộ."],
  ["Mỗi suất quà trị giá 1.200.000đ.",
    "Mỗi suất quà trị giá một triệu hai trăm nghìn đồng."],
  ["Tổng kinh phí xây dựng đường bê tông là 2,5 triệu đồng mỗi mét.",
    "Tổng kinh phí xây dựng đường bê tông là hai phẩy năm triệu đồng mỗi mét."],
  ["Tỷ lệ tham gia BHYT của xã đạt 95%.",
    "Tỷ lệ tham gia bảo hiểm y tế của xã đạt chín mươi lăm phần trăm."],
  ["Tỷ lệ hộ nghèo giảm còn 2,5%.",
    "Tỷ lệ hộ nghèo giảm còn hai phẩy năm phần trăm."],
  ["Nhiệt độ thấp nhất từ 8-10°C, vùng núi có nơi dưới 5°C.",
    "Nhiệt độ thấp nhất từ tám đến mười độ xê, vùng núi có nơi dưới năm độ xê."],
  ["Đợt rét đậm có thể xuống -2°C ở vùng cao.",
    "Đợt rét đậm có thể xuống âm hai độ xê ở vùng cao."],
  ["Lượng mưa phổ biến 50-100 mm, có nơi trên 150 mm.",
    "Lượng mưa phổ biến năm mươi đến một trăm mi li mét, có nơi trên một trăm năm mươi mi li mét."],
  ["Diện tích lúa bị ngập là 12,5 ha.",
    "Diện tích lúa bị ngập là mười hai phẩy năm héc ta."],
  ["Đoạn đường dài 1,2km đã được bê tông hóa.",
    "Đoạn đường dài một phẩy hai ki lô mét đã được bê tông hóa."],
  ["Mỗi hộ được hỗ trợ 100 kg gạo.",
    "Mỗi hộ được hỗ trợ một trăm ki lô gam gạo."],
  ["Nhà văn hóa thôn rộng 250 m².",
    "Nhà văn hóa thôn rộng hai trăm năm mươi mét vuông."],
  ["Bể chứa nước dung tích 5 m³.",
    "Bể chứa nước dung tích năm mét khối."],
  ["Các cháu từ 6-14 tuổi cần đến trường đúng giờ.",
    "Các cháu từ sáu đến mười bốn tuổi cần đến trường đúng giờ."],
  ["Trạm y tế tiêm chủng vào sáng thứ 4 hằng tuần.",
    "Trạm y tế tiêm chủng vào sáng thứ tư hằng tuần."],
  ["Lịch họp chuyển sang thứ 7 tuần này.",
    "Lịch họp chuyển sang thứ bảy tuần này."],
  ["Kỷ niệm 50 năm Ngày giải phóng miền Nam 30/4/1975 - 30/4/2025.",
    "Kỷ niệm năm mươi năm Ngày giải phóng miền Nam ngày ba mươi tháng tư năm một nghìn chín trăm bảy mươi lăm đến ngày ba mươi tháng tư năm hai nghìn không trăm hai mươi lăm."],
  ["Từ 15-20/3, xã tổ chức ra quân làm đường giao thông nông thôn.",
    "Từ ngày mười lăm đến ngày hai mươi tháng ba, xã tổ chức ra quân làm đường giao thông nông thôn."],
  ["Thanh niên sinh năm 2007 đến khám sức khỏe NVQS lúc 6h30.",
    "Thanh niên sinh năm hai nghìn không trăm linh bảy đến khám sức khỏe nghĩa vụ quân sự lúc sáu giờ ba mươi phút."],
  ["Buổi lễ bắt đầu lúc 8h ngày 2/9.",
    "Buổi lễ bắt đầu lúc tám giờ ngày hai tháng chín."],
  ["Chợ phiên họp từ 5g30 sáng.",
    "Chợ phiên họp từ năm giờ ba mươi phút sáng."],
  ["Căn cứ Quyết định số 123/QĐ-UBND ngày 5/1/2025 của UBND huyện.",
    "Căn cứ Quyết định số một trăm hai mươi ba quyết định ủy ban nhân dân ngày năm tháng một năm hai nghìn không trăm hai mươi lăm của ủy ban nhân dân huyện."],
  ["Ban chỉ huy PCCC&CNCH xã đề nghị người dân không đốt rơm rạ.",
    "Ban chỉ huy phòng cháy chữa cháy và cứu nạn cứu hộ xã đề nghị người dân không đốt rơm rạ."],
  ["Đề nghị các hộ nộp BHXH tự nguyện trước ngày 25.",
    "Đề nghị các hộ nộp bảo hiểm xã hội tự nguyện trước ngày hai mươi lăm."],
  ["Học sinh THCS và THPT nghỉ học ngày 10/2.",
    "Học sinh trung học cơ sở và trung học phổ thông nghỉ học ngày mười tháng hai."],
  ["UBMTTQ xã phát động ủng hộ đồng bào bị lũ lụt.",
    "Ủy ban mặt trận tổ quốc xã phát động ủng hộ đồng bào bị lũ lụt."],
  ["Hội nghị tổng kết KT-XH năm 2024 diễn ra ngày 28/12.",
    "Hội nghị tổng kết kinh tế xã hội năm hai nghìn không trăm hai mươi tư diễn ra ngày hai mươi tám tháng mười hai."],
  ["Người dân làm TTHC tại bộ phận một cửa từ thứ 2 đến thứ 6.",
    "Người dân làm thủ tục hành chính tại bộ phận một cửa từ thứ hai đến thứ sáu."],
  ["Đ/c Chủ tịch UBND xã sẽ tiếp dân vào ngày 15 hằng tháng.",
    "Đồng chí Chủ tịch ủy ban nhân dân xã sẽ tiếp dân vào ngày mười lăm hằng tháng."],
  ["Tuyên truyền ATGT cho học sinh trước kỳ nghỉ Tết.",
    "Tuyên truyền an toàn giao thông cho học sinh trước kỳ nghỉ Tết."],
  ["Kiểm tra ATTP tại 35 cơ sở kinh doanh.",
    "Kiểm tra an toàn thực phẩm tại ba mươi lăm cơ sở kinh doanh."],
  ["Tốc độ tối đa qua khu dân cư là 40 km/h.",
    "Tốc độ tối đa qua khu dân cư là bốn mươi ki lô mét một giờ."],
  ["Đã có 1.250 người đăng ký CCCD gắn chip.",
    "Đã có một nghìn hai trăm năm mươi người đăng ký căn cước công dân gắn chip."],
  ["Tổng dân số của xã là 12.345 người.",
    "Tổng dân số của xã là mười hai nghìn ba trăm bốn mươi lăm người."],
  ["Xã có 1.005 hộ dân.",
    "Xã có một nghìn không trăm linh năm hộ dân."],
  ["Dự án có tổng vốn 1.000.500.000 đồng.",
    "Dự án có tổng vốn một tỷ năm trăm nghìn đồng."],
  ["Giá lúa tăng lên 7.500 đ/kg.",
    "Giá lúa tăng lên bảy nghìn năm trăm đồng một ki lô gam."],
  ["Năm 2025 xã phấn đấu đạt chuẩn NTM nâng cao.",
    "Năm hai nghìn không trăm hai mươi lăm xã phấn đấu đạt chuẩn nông thôn mới nâng cao."],
  ["Phòng chống dịch COVID-19 vẫn cần duy trì.",
    "Phòng chống dịch cô vít mười chín vẫn cần duy trì."],
  ["Thôn 21 và thôn 31 mất điện từ 8h đến 11h.",
    "Thôn hai mươi mốt và thôn ba mươi mốt mất điện từ tám giờ đến mười một giờ."],
  ["Kế hoạch tiêm chủng tháng 4/2025 đã được phê duyệt.",
    "Kế hoạch tiêm chủng tháng tư năm hai nghìn không trăm hai mươi lăm đã được phê duyệt."],
  ["Tháng 1 tới xã sẽ tổ chức đại hội.",
    "Tháng một tới xã sẽ tổ chức đại hội."],
  ["Cả 4 tháng qua không có vụ TNGT nào.",
    "Cả bốn tháng qua không có vụ tai nạn giao thông nào."],
  ["Lần thứ 1 nhắc nhở, lần thứ 2 sẽ xử phạt.",
    "Lần thứ nhất nhắc nhở, lần thứ hai sẽ xử phạt."],
  ["Đội tuyên truyền có 24 thành viên.",
    "Đội tuyên truyền có hai mươi tư thành viên."],
  ["Mức phạt từ 1 - 2 triệu đồng.",
    "Mức phạt từ một đến hai triệu đồng."],
  ["Hẹn gặp lúc 14:45 tại hội trường.",
    "Hẹn gặp lúc mười bốn giờ bốn mươi lăm phút tại hội trường."],
  ["Lúc 9:05, xe cứu thương đã đến.",
    "Lúc chín giờ năm phút, xe cứu thương đã đến."],
  ["Hồ chứa đã tích 105 nghìn mét khối nước.",
    "Hồ chứa đã tích một trăm linh năm nghìn mét khối nước."],
  ["Số nhà 12/4 đường Trần Phú được cấp GCN QSDĐ.",
    "Số nhà mười hai trên bốn đường Trần Phú được cấp giấy chứng nhận quyền sử dụng đất."],
  ["Hạn nộp là 31/12.",
    "Hạn nộp là ngày ba mươi mốt tháng mười hai."],
  ["Cụ bà thọ 101 tuổi.",
    "Cụ bà thọ một trăm linh một tuổi."],
  ["Liên hệ SĐT 0210 3851 234 để đăng ký.",
    "Liên hệ số điện thoại không hai một không, ba tám năm một, hai ba bốn để đăng ký."],
  ["HĐND-UBND xã chúc mừng năm mới.",
    "Hội đồng nhân dân ủy ban nhân dân xã chúc mừng năm mới."],
  ["Sáng 1/6, xã tổ chức Ngày Quốc tế Thiếu nhi.",
    "Sáng ngày một tháng sáu, xã tổ chức Ngày Quốc tế Thiếu nhi."],
  ["Kết quả đạt 0,5 điểm.",
    "Kết quả đạt không phẩy năm điểm."],
  ["Nợ đọng 1.000.000 đồng.",
    "Nợ đọng một triệu đồng."],
  ["Ngày 10-10-2025 là hạn cuối.",
    "Ngày mười tháng mười năm hai nghìn không trăm hai mươi lăm là hạn cuối."],
  ["Cách trung tâm 15 km.",
    "Cách trung tâm mười lăm ki lô mét."],
  ["Trung bình 3,75 tấn mỗi héc ta.",
    "Trung bình ba phẩy bảy mươi lăm tấn mỗi héc ta."],
  ["Phí vệ sinh môi trường là 20.000đ/hộ/tháng.",
    "Phí vệ sinh môi trường là hai mươi nghìn đồng một hộ một tháng."],
  ["Xe thu gom rác đi qua thôn lúc 6g.",
    "Xe thu gom rác đi qua thôn lúc sáu giờ."],
  ["Theo Nghị định 15/2018/NĐ-CP về an toàn thực phẩm.",
    "Theo Nghị định mười lăm năm hai nghìn không trăm mười tám nghị định chính phủ về an toàn thực phẩm."],
  ["Tổng đài 1900 9095 hoạt động 24/7.",
    "Tổng đài một chín không không, chín không chín năm hoạt động hai mươi tư trên bảy."],
  ["Mỗi hộ mua 500g hạt giống.",
    "Mỗi hộ mua năm trăm gam hạt giống."],
];

describe('announcement sentences', () => {
  it(`has a large table (${SENTENCES.length} sentences)`, () => {
    expect(SENTENCES.length).toBeGreaterThanOrEqual(60);
  });
  it.each(SENTENCES)('%s', (input, expected) => {
    const r = normalize(input);
    expect(r.text).toBe(expected.normalize('NFC'));
    expect(r.text).toBe(r.text.normalize('NFC'));
    // Nothing left for the engine to guess at: no digits remain.
    expect(r.text).not.toMatch(/\d/);
  });
});

describe('changes for the preview', () => {
  it('lists each change with its kind', () => {
    const r = normalize('UBND xã thông báo: từ 7h30 ngày 15/3/2025, gọi 0912 345 678.');
    expect(r.changes).toEqual([
      { from: 'UBND', to: 'Ủy ban nhân dân', kind: 'abbreviation' },
      { from: '0912 345 678', to: 'không chín một hai, ba bốn năm, sáu bảy tám', kind: 'phone' },
      { from: '15/3/2025', to: 'mười lăm tháng ba năm hai nghìn không trăm hai mươi lăm', kind: 'date' },
      { from: '7h30', to: 'bảy giờ ba mươi phút', kind: 'time' },
    ]);
  });
  it('leaves text without numbers or abbreviations alone', () => {
    const text = 'Kính mời bà con đến dự họp đông đủ, đúng giờ.';
    expect(normalize(text)).toEqual({ text, changes: [] });
  });
  it('reads decomposed (NFD) input as NFC', () => {
    expect(normalize('Thôn 3 họp'.normalize('NFD')).text).toBe('Thôn ba họp'.normalize('NFC'));
  });
  it('does not read letters-and-digits codes as numbers', () => {
    expect(normalize('Phòng chống cúm H5N1').text).toBe('Phòng chống cúm H5N1');
  });
});

describe('abbreviation dictionary', () => {
  it('the built-in dictionary is valid and avoids ambiguous entries', () => {
    const d = defaultDictionary();
    expect(d.entries.get('UBND')).toBe('ủy ban nhân dân');
    for (const ambiguous of ['CA', 'TT', 'TP', 'CT', 'MN', 'TB']) expect(d.entries.has(ambiguous)).toBe(false);
  });
  it('the runtime can pass its own dictionary', () => {
    const dict = loadDictionary({ version: 1, entries: { 'TDP': 'tổ dân phố', 'UBND': 'ủy ban' } });
    expect(normalize('TDP 5 và UBND', { dict }).text).toBe('Tổ dân phố năm và ủy ban');
  });
  it('matches whole tokens, case-sensitive', () => {
    expect(normalize('Ca trực đêm, BHYTX, bhyt').text).toBe('Ca trực đêm, BHYTX, bhyt');
  });
  it('rejects an invalid dictionary naming each field and reason', () => {
    let err: unknown;
    try {
      loadDictionary({ version: 2, entries: { 'UB ND': 'x', 'OK': '', 'N2': 'số 2' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    const errors = (err as ValidationError).errors.join('\n');
    expect(errors).toMatch(/version: must be equal to constant/);
    expect(errors).toMatch(/entries: property name must be valid|entries\.UB ND|must match pattern/);
    expect(errors).toMatch(/entries\.OK: must NOT have fewer than 1 characters/);
    expect(errors).toMatch(/entries\.N2: must match pattern/);
  });
});
